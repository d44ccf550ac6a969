"""`make bench`: what imgpipe costs on this machine, measured side by side in one run.

Processing cost against a naive Pillow version and against libvips, end-to-end latency and
burst throughput through the real stack, the API's request rate under wrk, and a worker's
peak memory. Nothing here is a test: it measures and reports, it does not pass or fail.
"""

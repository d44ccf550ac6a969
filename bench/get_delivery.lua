-- wrk script: every request is a GET of one delivery address, with the Accept header a browser
-- sends for an <img> (bench/delivery.py sets BENCH_ACCEPT). At the end it prints one line,
-- BENCH-JSON {...}, that bench/delivery.py reads; non_2xx counts answers of 400 and over (wrk's own
-- rule), so the 302s measured are not among them.
local accept = os.getenv("BENCH_ACCEPT")
if accept then
  wrk.headers["Accept"] = accept
end

done = function(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    'BENCH-JSON {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "max_us": %d, ' ..
    '"non_2xx": %d, "connect_errors": %d, "read_errors": %d, "write_errors": %d, "timeouts": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.max,
    errors.status, errors.connect, errors.read, errors.write, errors.timeout))
end

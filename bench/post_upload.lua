-- wrk script: every request is the JSON POST /uploads a client makes before its PUT.
-- At the end it prints one line, BENCH-JSON {...}, that bench/api_load.py reads.
wrk.method = "POST"
wrk.body = '{"filename": "photo.jpg", "content_type": "image/jpeg", "size": 1048576}'
wrk.headers["Content-Type"] = "application/json"
-- A browser page on another origin sends its Origin: bench/api_load.py sets BENCH_ORIGIN.
local origin = os.getenv("BENCH_ORIGIN")
if origin then
  wrk.headers["Origin"] = origin
end
-- The API token, as every client of the API sends it: bench/api_load.py sets BENCH_TOKEN.
local token = os.getenv("BENCH_TOKEN")
if token and token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end

done = function(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    'BENCH-JSON {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "max_us": %d, ' ..
    '"non_2xx": %d, "connect_errors": %d, "read_errors": %d, "write_errors": %d, "timeouts": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.max,
    errors.status, errors.connect, errors.read, errors.write, errors.timeout))
end

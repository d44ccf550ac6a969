-- wrk script: every request is the JSON POST /uploads a client makes before its PUT.
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

-- The BENCH-JSON line at the end, as every script of the benchmark prints it.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "wrk_report.lua")

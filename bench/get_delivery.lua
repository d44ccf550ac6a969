-- wrk script: every request is a GET of one delivery address, with the Accept header a browser
-- sends for an <img> (bench/delivery.py sets BENCH_ACCEPT). The 302s measured are not among the
-- failures its report counts (answers of 400 and over).
local accept = os.getenv("BENCH_ACCEPT")
if accept then
  wrk.headers["Accept"] = accept
end

-- The BENCH-JSON line at the end, as every script of the benchmark prints it.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "wrk_report.lua")

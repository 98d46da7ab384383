-- wrk script for the open-loop benchmarks (benches/stall): prints wrk's latency
-- percentiles in microseconds, one "name value" a line, after wrk's own report, so
-- they are read exactly instead of from wrk's rounded text ("1.23ms").
done = function(summary, latency, requests)
  io.write("--- percentiles_us\n")
  io.write(string.format("requests %d\n", summary.requests))
  io.write(string.format("errors %d\n", summary.errors.connect + summary.errors.read
    + summary.errors.write + summary.errors.status + summary.errors.timeout))
  io.write(string.format("min %d\nmean %.1f\nmax %d\n", latency.min, latency.mean, latency.max))
  for _, p in ipairs({ 50, 90, 95, 99, 99.9 }) do
    io.write(string.format("p%g %d\n", p, latency:percentile(p)))
  end
end

# client/tools: settlectl and settle-bench.

"""Repository tools: `make run` (run_local), `make package` (package) and the sample-event
helpers they share; none of it ships in the function."""

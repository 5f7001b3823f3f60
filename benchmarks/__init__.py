"""meshclient's benchmarks: `python -m benchmarks [name ...]` runs them (default: all that
exist); `python -m benchmarks.<name>` runs one. Each prints ratios measured in one run."""

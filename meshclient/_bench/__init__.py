"""What `meshclient bench` needs at run time, so the command works from an installed package.

* `measure`: the measuring code, bare httpx against httpx through the mesh.
* `upstream`: the minimal HTTP/1.1 server the measurements run against, in its own process
  (`python -m meshclient._bench.upstream`), so its CPU is never counted against the client.

The full benchmark suite (`python -m benchmarks.overhead` and the others, in the
repository's `benchmarks/`) builds on these; its tables and reports live there.
"""

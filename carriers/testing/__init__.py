"""Local fakes of the carriers' APIs, with fault modes, for tests, benchmarks and plugin authors.

``carriers.testing.server.FakeServer`` is the threaded HTTP server every fake is built on;
``sf``, ``zto`` and ``kuaidi100`` speak those carriers' documented formats and check their
signatures. The sandbox carrier talks no HTTP, so it has no fake here.
"""

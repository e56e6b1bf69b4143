"""Watching runs: the web dashboard (``parallelrun ui``), its JSON API, and the notebook widget.

* :mod:`~parallelrun.ui.state` what the views show, read from the workspace catalog (counts the
  runner keeps there) and the step log folders; no web framework;
* :mod:`~parallelrun.ui.logfiles` log files addressed by ids, read by byte ranges;
* :mod:`~parallelrun.ui.failures` the error summary, indexed incrementally from the engine's
  failure records;
* :mod:`~parallelrun.ui.throughput` items/s over time from the engine's progress records and
  live samples;
* :mod:`~parallelrun.ui.graph` the pipeline graph's layout;
* :mod:`~parallelrun.ui.app` the FastAPI app, assembled from :mod:`~parallelrun.ui.routes` (one
  router per area: pages, ``/api/...``, server-sent events, cancel);
* :mod:`~parallelrun.ui.access` the ``Host`` check and the token the actions need;
* :mod:`~parallelrun.ui.server` binding a loopback port and serving the app with uvicorn;
* :mod:`~parallelrun.ui.widgets` ``RunDetails(run).show()`` for notebooks.

Only ``app``, ``access``, ``routes`` and ``server`` import the web stack, and nothing here is
imported by ``import parallelrun``.
"""

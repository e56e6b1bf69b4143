"""The dashboard's routes, one router per area; :func:`parallelrun.ui.app.create_app` includes
them all.

* :mod:`.pages` the HTML pages (one page, routed in the browser) and the static assets;
* :mod:`.runs` the workspace, experiments, runs, a run's events and cancelling one;
* :mod:`.steps` step runs: live counts, events, throughput;
* :mod:`.errors` a step's failed tries, grouped by exception type;
* :mod:`.logs` run and step log files, listed by id and read by byte ranges;
* :mod:`.catalog` datasets, models, compute targets, datastores;
* :mod:`.published` published pipelines and submitting one;
* :mod:`.events` the server-sent event stream the live views share;
* :mod:`.context` what every route reads (the workspace view and its caches);
* :mod:`.schemas` the answers' shapes for the OpenAPI document.
"""

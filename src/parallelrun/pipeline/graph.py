"""``Pipeline``: steps and the order the data between them imposes.

A step that reads a ``PipelineData`` runs after the step that writes it (and after the steps
given to ``step.run_after``). Steps with no path between them may run at the same time. A
pipeline whose links form a cycle is refused, naming the cycle; so are two steps of one name,
a PipelineData written by two steps, and one that some step reads but no step writes.
"""

from __future__ import annotations

from typing import Any, Iterable

from parallelrun.errors import ConfigurationError
from parallelrun.pipeline.pipeline_data import PipelineData
from parallelrun.pipeline.steps import PipelineStep


class StepGraph:
    """The dependencies of a list of steps. ``order`` is a topological order that keeps the
    listed order where the links allow.

    Example::

        graph = StepGraph([prep, score, report])
        graph.dependencies["batch-mnist"]      # {'prep.py'}
        graph.ready(done={"prep.py"})          # ['batch-mnist']
    """

    def __init__(self, steps: Iterable[PipelineStep]):
        self.steps: list[PipelineStep] = list(steps)
        if not self.steps:
            raise ConfigurationError("steps", [], "at least one step")
        self.by_name: dict[str, PipelineStep] = {}
        for step in self.steps:
            if not isinstance(step, PipelineStep):
                raise ConfigurationError("steps", step,
                                         "ParallelRunStep or PythonScriptStep objects")
            if step.name in self.by_name:
                what = "the same step twice" if self.by_name[step.name] is step else \
                    "two steps with that name"
                raise ConfigurationError(
                    "steps", step.name, f"step names unique in a pipeline; it has {what}. "
                    "Give each step its own name")
            self.by_name[step.name] = step
        self.producers: dict[str, str] = {}
        data: dict[str, PipelineData] = {}
        for step in self.steps:
            for output in step.outputs:
                if output.name in self.producers:
                    raise ConfigurationError(
                        f"{step.name}: outputs", output.name,
                        f"a PipelineData written by one step only; step "
                        f"{self.producers[output.name]!r} writes it too")
                self.producers[output.name] = step.name
                data[output.name] = output
        self.dependencies: dict[str, set[str]] = {}
        for step in self.steps:
            needs = set()
            for item in step.consumed():
                producer = self.producers.get(item.name)
                if producer is None:
                    raise ConfigurationError(
                        f"{step.name}: inputs", item.name,
                        "a PipelineData that a step of this pipeline writes (as its output / "
                        "outputs); no step writes it")
                if data[item.name] is not item and item.datastore_name != data[item.name].datastore_name:
                    raise ConfigurationError(f"{step.name}: inputs", item.name,
                                             "PipelineData names unique in a pipeline")
                if producer == step.name:
                    raise ConfigurationError(f"{step.name}: inputs", item.name,
                                             f"data of another step: step {step.name!r} would "
                                             "read its own output")
                needs.add(producer)
            for other in step._run_after:
                if other.name not in self.by_name or self.by_name[other.name] is not other:
                    raise ConfigurationError(f"{step.name}: run_after", other.name,
                                             "a step of the same pipeline")
                needs.add(other.name)
            self.dependencies[step.name] = needs
        self.order = self._topological()

    def _topological(self) -> list[str]:
        done: list[str] = []
        placed: set[str] = set()
        while len(done) < len(self.steps):
            ready = [s.name for s in self.steps
                     if s.name not in placed and self.dependencies[s.name] <= placed]
            if not ready:
                cycle = self._find_cycle(placed)
                raise ConfigurationError(
                    "steps", " -> ".join(cycle),
                    "a pipeline without cycles: these steps each wait for the data of the next, "
                    "so none can start. Break the cycle (a step cannot read, directly or through "
                    "other steps, what it writes)")
            done.extend(ready)
            placed.update(ready)
        return done

    def _find_cycle(self, placed: set[str]) -> list[str]:
        left = [s.name for s in self.steps if s.name not in placed]
        state: dict[str, int] = {}
        stack: list[str] = []

        def visit(name: str) -> list[str] | None:
            state[name] = 1
            stack.append(name)
            for need in sorted(self.dependencies[name] - placed,
                               key=lambda n: left.index(n) if n in left else 0):
                if state.get(need) == 1:
                    start = stack.index(need)
                    # reported in running order: each step needs the one before it
                    return list(reversed(stack[start:])) + [stack[-1]]
                if need not in state:
                    found = visit(need)
                    if found:
                        return found
            stack.pop()
            state[name] = 2
            return None

        for name in left:
            if name not in state:
                found = visit(name)
                if found:
                    return found
        return left  # not reached: a blocked graph always holds a cycle

    def ready(self, done: set[str], started: set[str] = frozenset()) -> list[str]:
        """Steps whose dependencies are all in ``done`` and that have not started, in order."""
        return [name for name in self.order
                if name not in done and name not in started and self.dependencies[name] <= done]

    def downstream(self, name: str) -> set[str]:
        """Every step that (directly or not) waits for ``name``."""
        found: set[str] = set()
        frontier = {name}
        while frontier:
            nxt = {s for s, needs in self.dependencies.items() if needs & frontier} - found
            found |= nxt
            frontier = nxt
        return found

    def describe(self) -> dict:
        """JSON for views: each step with its kind, inputs, outputs and dependencies."""
        return {"steps": [{**step.describe(), "depends_on": sorted(self.dependencies[step.name])}
                          for step in self.steps], "order": list(self.order)}


class Pipeline:
    """Steps to run together, in the order their data links impose.

    Example (the original document's code)::

        pipeline = Pipeline(workspace=ws, steps=[parallelrun_step])
        pipeline_run = Experiment(ws, "digit_identification").submit(pipeline)

    Steps whose data do not depend on each other may run at the same time.
    """

    def __init__(self, workspace: Any, steps: Iterable[PipelineStep], description: str | None = None,
                 default_datastore: Any = None, default_source_directory: str | None = None,
                 resolve_closure: bool = True, continue_on_step_failure: bool = False):
        if workspace is None or not hasattr(workspace, "catalog"):
            raise ConfigurationError("workspace", workspace,
                                     "a Workspace (Workspace.from_config() or Workspace.create(...))")
        steps = list(steps) if isinstance(steps, (list, tuple)) else [steps]
        self.workspace = workspace
        self.graph = StepGraph(steps)
        self.steps = self.graph.steps
        self.description = description
        self.default_datastore = default_datastore
        self.continue_on_step_failure = continue_on_step_failure

    def validate(self) -> list[str]:
        """Check every step now (scripts, arguments, environments); raises on the first
        problem, returns [] when there is none (Azure ML returns a list of errors)."""
        for step in self.steps:
            step.validate()
        return []

    def submit(self, experiment_name: str, pipeline_parameters: dict | None = None,
               continue_on_step_failure: bool | None = None, regenerate_outputs: bool = False,
               tags: dict | None = None, **kwargs: Any):
        """``Experiment(ws, experiment_name).submit(self, pipeline_parameters=...)``;
        ``regenerate_outputs=True`` turns reuse off for this run."""
        from parallelrun.pipeline.experiment import Experiment

        return Experiment(self.workspace, experiment_name).submit(
            self, tags=tags, regenerate_outputs=regenerate_outputs,
            continue_on_step_failure=continue_on_step_failure,
            pipeline_parameters=pipeline_parameters)

    def publish(self, name: str | None = None, description: str | None = None,
                version: str | None = None, continue_on_step_failure: bool | None = None):
        """Keep this pipeline in the workspace as a ``PublishedPipeline`` that can be submitted
        by its id (from Python, ``parallelrun pipeline submit ID``, the dashboard's API) and
        scheduled (``Schedule.create``). Checked now as submit checks it.

        Example: ``published = pipeline.publish(name="nightly scoring", version="1.0")``.
        """
        from parallelrun.pipeline.published import publish

        return publish(self, name=name, description=description, version=version,
                       continue_on_step_failure=continue_on_step_failure)

    def __repr__(self) -> str:
        return f"Pipeline(steps={[s.name for s in self.steps]})"

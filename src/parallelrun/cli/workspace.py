"""``parallelrun workspace|datastore|dataset|model ...``: the workspace from the terminal.

Every command finds the workspace with ``--workspace PATH`` (a workspace folder, or a folder
below one) or, by default, ``config.json`` from the current folder upward, as
``Workspace.from_config()`` does. ``list`` and ``show`` print tables, or JSON with ``--json``;
secrets are never printed (datastores show ``stored`` or ``from $VARIABLE``).

Exit status: 0 done, 2 an error (unknown name, unreachable storage...), printed on stderr.

\b
Examples:
  parallelrun workspace create my-ws --workspace .
  parallelrun datastore register azure-blob mnist_datastore --container sampledata \\
      --account-name pipelinedata --account-key-env MNIST_KEY
  parallelrun dataset register mnist_sample_data 'mnist/*.png' --datastore mnist_datastore --new-version
  parallelrun model register mnist models/ --tag pretrained=mnist
  parallelrun model list
"""

from __future__ import annotations

import json
import sys

import click
from rich.table import Table

from parallelrun.cli import main
from parallelrun.cli.common import (all_versions_option, deprecated, format_time, key_values,
                                     open_workspace, reports_errors, stderr, stdout,
                                     version_option, workspace_option)


_json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


def use_workspace_datastores(path: str | None = None) -> bool:
    """Make the datastores of the workspace found from ``path`` (default: the current folder)
    lend their credentials to plain ``az://``/``s3://`` URLs under them; False without one."""
    from parallelrun.errors import WorkspaceError
    from parallelrun.workspace.datastore import Datastore

    try:
        Datastore.list(open_workspace(path))  # each datastore registers its root URL
    except WorkspaceError:
        return False
    return True


def _size(count: int | None) -> str:
    value = float(count or 0)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return str(count)


def _table(title: str, columns: list[str], rows: list[list]) -> None:
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*[str(c) if c is not None else "" for c in row])
    stdout.print(table)


def _print_json(data) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


# workspace --------------------------------------------------------------------------------------
@main.group("workspace")
def workspace_group() -> None:
    """Create or show a workspace (a folder with a catalog and config.json)."""


@workspace_group.command("create")
@click.argument("name")
@click.option("--workspace", "workspace_path", default=".", show_default=True, metavar="PATH",
              help="Folder to create the workspace in (made if missing).")
@click.option("--path", "old_path", default=None, hidden=True)  # before --workspace everywhere
@reports_errors
def workspace_create(name: str, workspace_path: str, old_path: str | None) -> None:
    """Create the workspace NAME in --workspace (or open it if it exists)."""
    from parallelrun.workspace.workspace import Workspace

    if old_path is not None:
        deprecated("workspace create --path", "workspace create --workspace")
        workspace_path = old_path
    ws = Workspace.create(name, path=workspace_path, exist_ok=True)
    stdout.print(f"workspace {ws.name} at {ws.path}")


@workspace_group.command("show")
@workspace_option
@_json_option
@reports_errors
def workspace_show(workspace_path: str | None, as_json: bool) -> None:
    """Name, folder and default datastore of the workspace."""
    ws = open_workspace(workspace_path)
    info = {"name": ws.name, "path": ws.path,
            "default_datastore": ws.get_default_datastore().name,
            "compute_targets": list(ws.compute_targets)}
    if as_json:
        _print_json(info)
    else:
        _table(f"workspace {ws.name}", ["field", "value"],
               [[k, ", ".join(v) if isinstance(v, list) else v] for k, v in info.items()])


# datastore --------------------------------------------------------------------------------------
@main.group("datastore")
def datastore_group() -> None:
    """Register, list and show datastores (local folders, Azure Blob containers, S3 buckets)."""


@datastore_group.command("list")
@workspace_option
@_json_option
@reports_errors
def datastore_list(workspace_path: str | None, as_json: bool) -> None:
    """Every registered datastore (credentials shown as 'stored' or 'from $VARIABLE')."""
    from parallelrun.workspace.datastore import Datastore

    ws = open_workspace(workspace_path)
    stores = [store.describe() for store in Datastore.list(ws)]
    if as_json:
        _print_json(stores)
        return
    _table(f"datastores of {ws.name}", ["name", "type", "url", "credentials"],
           [[s["name"], s["type"], s["url"],
             ", ".join(f"{k}: {v}" for k, v in s["credentials"].items())] for s in stores])


@datastore_group.command("show")
@click.argument("name")
@workspace_option
@_json_option
@reports_errors
def datastore_show(name: str, workspace_path: str | None, as_json: bool) -> None:
    """Where the datastore NAME points and how it is reached (never its secrets)."""
    from parallelrun.workspace.datastore import Datastore

    info = Datastore.get(open_workspace(workspace_path), name).describe()
    if as_json:
        _print_json(info)
        return
    _table(f"datastore {name}", ["field", "value"],
           [[k, json.dumps(v) if isinstance(v, dict) else v] for k, v in info.items()])


@datastore_group.group("register")
def datastore_register() -> None:
    """Register a datastore: azure-blob, s3 or local.

    Secrets are best given as the NAME of an environment variable (--account-key-env...): the
    value is then read when the storage is opened and never stored. A value given directly is
    stored in the workspace catalog (a file only you can read) and lands in your shell history.
    """


def _register_flags(func):
    func = click.option("--overwrite", is_flag=True, help="Replace a datastore of this name.")(func)
    func = click.option("--create", "create", is_flag=True,
                        help="Create the container/bucket/folder if it does not exist.")(func)
    func = click.option("--skip-validation", is_flag=True,
                        help="Do not check now that the storage can be reached.")(func)
    return workspace_option(func)


def _registered(store) -> None:
    stdout.print(f"registered datastore {store.name} ({store.datastore_type}) -> {store.root_url}")


@datastore_register.command("azure-blob")
@click.argument("name")
@click.option("--container", "container_name", required=True, help="Container name.")
@click.option("--account-name", default=None, help="Storage account name (default: the one in --connection-string or --account-url).")
@click.option("--account-key", default=None, help="Account key (stored; prefer --account-key-env). Default: none.")
@click.option("--account-key-env", default=None, metavar="VAR", help="Environment variable holding the account key (default: none).")
@click.option("--sas-token", default=None, help="SAS token (stored; prefer --sas-token-env). Default: none.")
@click.option("--sas-token-env", default=None, metavar="VAR", help="Environment variable holding a SAS token (default: none).")
@click.option("--connection-string", default=None, help="Connection string (stored; prefer --connection-string-env). Default: none.")
@click.option("--connection-string-env", default=None, metavar="VAR", help="Environment variable holding a connection string (default: none).")
@click.option("--endpoint", default=None, help="Storage endpoint (default core.windows.net; host:port for emulators).")
@click.option("--protocol", default=None, type=click.Choice(["https", "http"]), help="Protocol (default https).")
@click.option("--account-url", default=None, help="Whole account URL, e.g. http://127.0.0.1:10000/devstoreaccount1 (default: made from "
                   "--protocol, --account-name and --endpoint).")
@_register_flags
@reports_errors
def register_azure_blob(name, container_name, account_name, account_key, account_key_env, sas_token,
                        sas_token_env, connection_string, connection_string_env, endpoint, protocol,
                        account_url, overwrite, create, skip_validation, workspace_path) -> None:
    """Register the Azure Blob container --container as datastore NAME."""
    from parallelrun.workspace.datastore import Datastore

    store = Datastore.register_azure_blob_container(
        open_workspace(workspace_path), name, container_name, account_name, sas_token=sas_token,
        account_key=account_key, protocol=protocol, endpoint=endpoint, overwrite=overwrite,
        create_if_not_exists=create, skip_validation=skip_validation,
        connection_string=connection_string, account_url=account_url,
        account_key_env=account_key_env, sas_token_env=sas_token_env,
        connection_string_env=connection_string_env)
    _registered(store)


@datastore_register.command("s3")
@click.argument("name")
@click.option("--bucket", required=True, help="Bucket name.")
@click.option("--endpoint-url", default=None, help="Endpoint of an S3-compatible service (default: AWS S3).")
@click.option("--region", default=None, help="Region name (default: the bucket's, or AWS's default).")
@click.option("--access-key-id", default=None, help="Access key id (stored; prefer --access-key-id-env). Default: AWS's usual sources.")
@click.option("--access-key-id-env", default=None, metavar="VAR", help="Environment variable holding the access key id (default: none).")
@click.option("--secret-access-key", default=None, help="Secret access key (stored; prefer --secret-access-key-env). Default: AWS's usual "
                   "sources.")
@click.option("--secret-access-key-env", default=None, metavar="VAR", help="Environment variable holding the secret access key (default: none).")
@click.option("--anonymous", is_flag=True, help="Read a public bucket without credentials.")
@_register_flags
@reports_errors
def register_s3(name, bucket, endpoint_url, region, access_key_id, access_key_id_env,
                secret_access_key, secret_access_key_env, anonymous, overwrite, create,
                skip_validation, workspace_path) -> None:
    """Register the S3 bucket --bucket as datastore NAME."""
    from parallelrun.workspace.datastore import Datastore

    store = Datastore.register_s3_bucket(
        open_workspace(workspace_path), name, bucket, endpoint_url=endpoint_url, region=region,
        access_key_id=access_key_id, secret_access_key=secret_access_key, anonymous=anonymous,
        access_key_id_env=access_key_id_env, secret_access_key_env=secret_access_key_env,
        overwrite=overwrite, create_if_not_exists=create, skip_validation=skip_validation)
    _registered(store)


@datastore_register.command("local")
@click.argument("name")
@click.argument("path")
@_register_flags
@reports_errors
def register_local(name, path, overwrite, create, skip_validation, workspace_path) -> None:
    """Register the local folder PATH as datastore NAME."""
    from parallelrun.workspace.datastore import Datastore

    store = Datastore.register_local(open_workspace(workspace_path), name, path,
                                     overwrite=overwrite, create_if_not_exists=create,
                                     skip_validation=skip_validation)
    _registered(store)


# dataset ----------------------------------------------------------------------------------------
@main.group("dataset")
def dataset_group() -> None:
    """Register, list and show versioned datasets."""


_FORMATS = {"csv": "from_delimited_files", "parquet": "from_parquet_files",
            "jsonl": "from_json_lines_files"}


@dataset_group.command("register")
@click.argument("name")
@click.argument("paths", nargs=-1, required=True)
@click.option("--datastore", default=None, help="PATHS are relative to this datastore (default: PATHS are local paths or URLs).")
@click.option("--format", "fmt", default=None, type=click.Choice(sorted(_FORMATS)),
              help="A tabular dataset of these files (default: a file dataset).")
@click.option("--new-version", is_flag=True, help="Add a version when NAME exists.")
@click.option("--description", default=None, help="What the dataset holds, for people (default: none).")
@click.option("--tag", "tags", multiple=True, metavar="KEY=VALUE",
              help="Tag (repeatable; default: none).")
@workspace_option
@reports_errors
def dataset_register(name, paths, datastore, fmt, new_version, description, tags,
                     workspace_path) -> None:
    """Register the files PATHS (files, folders, globs, URLs) as dataset NAME."""
    from parallelrun.data.dataset import Dataset
    from parallelrun.workspace.datastore import Datastore

    ws = open_workspace(workspace_path)
    Datastore.list(ws)  # URLs under a registered datastore find its credentials
    specs = [Datastore.get(ws, datastore).path(p) for p in paths] if datastore else list(paths)
    if fmt:
        dataset = getattr(Dataset.Tabular, _FORMATS[fmt])(specs)
    else:
        dataset = Dataset.File.from_files(specs)
    registered = dataset.register(ws, name, description=description,
                                  tags=key_values(tags, "--tag"), create_new_version=new_version)
    info = registered.registration
    stdout.print(f"registered dataset {name} version {info['version']} (id {info['id']}): "
                 f"{info['file_count']} files, {_size(info['total_bytes'])}")


@dataset_group.command("list")
@all_versions_option("dataset")
@workspace_option
@_json_option
@reports_errors
def dataset_list(all_versions, workspace_path, as_json) -> None:
    """Registered datasets: the latest version of each, or every version with --all-versions."""
    from parallelrun.workspace import datasets

    ws = open_workspace(workspace_path)
    rows = datasets.list_versions(ws, latest=not all_versions)
    if as_json:
        _print_json(rows)
        return
    _table(f"datasets of {ws.name}", ["name", "version", "kind", "files", "size", "registered", "paths"],
           [[r["name"], r["version"], r["kind"], r["file_count"], _size(r["total_bytes"]),
             format_time(r["created_at"]), _paths(r["paths"])] for r in rows])


def _paths(paths: list) -> str:
    return ", ".join(f"{p['datastore']}:{p['path']}" if isinstance(p, dict) else str(p) for p in paths)


@dataset_group.command("show")
@click.argument("name")
@version_option("dataset")
@click.option("--verify", is_flag=True, help="Check that the files still match the fingerprint.")
@workspace_option
@_json_option
@reports_errors
def dataset_show(name, version, verify, workspace_path, as_json) -> None:
    """One version of the dataset NAME: paths, fingerprint, files, size."""
    from parallelrun.data.base import AbstractDataset
    from parallelrun.workspace import datasets

    ws = open_workspace(workspace_path)
    dataset = AbstractDataset.get_by_name(ws, name, "latest" if version is None else version)
    info = dict(dataset.registration)
    info["paths"] = _paths(info["paths"])
    info["created_at"] = format_time(info["created_at"])
    if verify:
        info["unchanged"] = datasets.verify(dataset)
    if as_json:
        _print_json(info)
    else:
        _table(f"dataset {name} version {info['version']}", ["field", "value"],
               [[k, json.dumps(v) if isinstance(v, dict) else v] for k, v in info.items()])
    if verify and not info["unchanged"]:
        stderr.print(f"dataset {name} version {info['version']}: the files changed since it was "
                     "registered (the fingerprint differs)")
        sys.exit(1)


# model ------------------------------------------------------------------------------------------
@main.group("model")
def model_group() -> None:
    """Register, list and show versioned models."""


@model_group.command("register")
@click.argument("name")
@click.argument("path")
@click.option("--tag", "tags", multiple=True, metavar="KEY=VALUE",
              help="Tag (repeatable; default: none).")
@click.option("--property", "properties", multiple=True, metavar="KEY=VALUE",
              help="Property (repeatable; default: none).")
@click.option("--description", default=None, help="What the model is, for people (default: none).")
@workspace_option
@reports_errors
def model_register(name, path, tags, properties, description, workspace_path) -> None:
    """Copy PATH (a file, folder or .tar.gz) into the workspace as the next version of NAME."""
    from parallelrun.workspace.models import Model

    model = Model.register(open_workspace(workspace_path), path, name,
                           tags=key_values(tags, "--tag"),
                           properties=key_values(properties, "--property"),
                           description=description)
    stdout.print(f"registered model {model.name} version {model.version} at {model.path}")


@model_group.command("list")
@click.option("--name", default=None, help="Only versions of this model (default: every model).")
@all_versions_option("model")
@click.option("--latest", is_flag=True, hidden=True)  # the default since --all-versions
@workspace_option
@_json_option
@reports_errors
def model_list(name, all_versions, latest, workspace_path, as_json) -> None:
    """Registered models: the latest version of each, or every version with --all-versions."""
    from parallelrun.workspace.models import Model

    if latest:
        deprecated("model list --latest", "model list (the latest is the default; "
                   "--all-versions lists every version)")
    ws = open_workspace(workspace_path)
    models = [m.describe() for m in Model.list(ws, name=name, latest=not all_versions)]
    if as_json:
        _print_json(models)
        return
    _table(f"models of {ws.name}", ["name", "version", "files", "size", "registered", "tags",
                                    "description"],
           [[m["name"], m["version"], m["file_count"], _size(m["total_bytes"]),
             format_time(m["created_time"]), json.dumps(m["tags"]) if m["tags"] else "",
             m["description"]] for m in models])


@model_group.command("show")
@click.argument("name")
@version_option("model")
@workspace_option
@_json_option
@reports_errors
def model_show(name, version, workspace_path, as_json) -> None:
    """One version of the model NAME: where its files are, tags, properties."""
    from parallelrun.workspace.models import Model

    info = Model(open_workspace(workspace_path), name, version=version).describe()
    info["created_time"] = format_time(info["created_time"])
    if as_json:
        _print_json(info)
        return
    _table(f"model {name} version {info['version']}", ["field", "value"],
           [[k, json.dumps(v) if isinstance(v, dict) else v] for k, v in info.items()])

"""``Datastore``: a named pointer at storage (a local folder, an Azure Blob container, an S3
bucket), registered in a workspace, and ``DataPath``: a folder or glob on one.

A datastore's record in the catalog holds where the storage is (account, container, endpoint,
bucket, folder) and never a secret. Secrets (account key, SAS token, connection string, S3 keys)
go to the catalog's ``secrets`` table (the file is mode 0600) or stay in an environment variable
named at registration; either way they are read only when storage is opened
(:attr:`DataPath.storage_options`), and no ``repr``, ``describe()``, CLI listing or log shows
them.

Example::

    blob = Datastore.register_azure_blob_container(ws, datastore_name="mnist_datastore",
            container_name="sampledata", account_name="pipelinedata", account_key_env="MNIST_KEY")
    ds = Dataset.File.from_files(path=blob.path("mnist/"))
"""

from __future__ import annotations

import json
import os
import re
import time
from typing import Any

from parallelrun.data import remote
from parallelrun.errors import StorageError, WorkspaceError
from parallelrun.workspace.storage_kinds import STORAGE_KINDS, local_root
from parallelrun.workspace.workspace import UnknownNameError, Workspace, known

_NAME = re.compile(r"^[A-Za-z0-9_]{1,255}$")


class Datastore:
    """A registered datastore. Create with ``register_*``; find with :meth:`get`.

    Attributes: ``name``, ``datastore_type`` (``AzureBlob``, ``AmazonS3``, ``LocalFolder``),
    ``kind`` and the fields of its kind (``container_name``, ``account_name``, ``bucket``,
    ``endpoint_url``, ``path``...) as attributes.
    """

    def __init__(self, workspace: Workspace, name: str, kind: str, config: dict,
                 secret_env: dict | None = None, secret_names: tuple = ()):
        self.workspace = workspace
        self.name = name
        self.kind = kind
        self.storage_kind = STORAGE_KINDS[kind]
        self.config = dict(config)
        self.secret_env = dict(secret_env or {})
        self._secret_names = tuple(secret_names)
        for key, value in self.config.items():
            if not hasattr(type(self), key) and key not in ("kind", "name"):
                setattr(self, key, value)  # container_name, account_name, bucket...
        if not self.storage_kind.remote:
            self.path_on_disk = local_root(workspace, self.config["path"])

    @property
    def datastore_type(self) -> str:
        return self.storage_kind.datastore_type

    # Registration ------------------------------------------------------------------------------
    @staticmethod
    def register_azure_blob_container(workspace: Workspace, datastore_name: str,
                                      container_name: str, account_name: str | None = None,
                                      sas_token: str | None = None, account_key: str | None = None,
                                      protocol: str | None = None, endpoint: str | None = None,
                                      overwrite: bool = False, create_if_not_exists: bool = False,
                                      skip_validation: bool = False, *,
                                      connection_string: str | None = None,
                                      account_url: str | None = None,
                                      account_key_env: str | None = None,
                                      sas_token_env: str | None = None,
                                      connection_string_env: str | None = None,
                                      **_azure_arguments: Any) -> "Datastore":
        """Register an Azure Blob container (or an emulator's, such as Azurite).

        Credentials: ``account_key``, ``sas_token`` or ``connection_string``, each also readable
        from an environment variable named by ``*_env`` (then it is never stored); none means
        a public container read anonymously. ``endpoint``/``protocol`` select another cloud or
        an emulator (``endpoint="127.0.0.1:10000", protocol="http"``); ``account_url`` gives
        the whole URL of the account (``http://127.0.0.1:10000/devstoreaccount1``).

        Example::

            Datastore.register_azure_blob_container(ws, datastore_name="mnist_datastore",
                container_name="sampledata", account_name="pipelinedata", overwrite=True)
        """
        if not container_name or not isinstance(container_name, str):
            raise StorageError(f"container_name={container_name!r}: give the container's name")
        if not account_name and not (connection_string or connection_string_env):
            raise StorageError("register_azure_blob_container needs account_name (or a "
                               "connection_string naming the account)")
        config = {"container_name": container_name, "account_name": account_name,
                  "protocol": protocol or "https", "endpoint": endpoint or "core.windows.net",
                  "account_url": account_url}
        secrets = {"account_key": account_key, "sas_token": sas_token,
                   "connection_string": connection_string}
        env = {"account_key": account_key_env, "sas_token": sas_token_env,
               "connection_string": connection_string_env}
        return Datastore._register(workspace, datastore_name, "azure_blob", config, secrets, env,
                                   overwrite, create_if_not_exists, skip_validation)

    @staticmethod
    def register_s3_bucket(workspace: Workspace, datastore_name: str, bucket: str,
                           endpoint_url: str | None = None, region: str | None = None,
                           access_key_id: str | None = None,
                           secret_access_key: str | None = None,
                           session_token: str | None = None, *, anonymous: bool = False,
                           access_key_id_env: str | None = None,
                           secret_access_key_env: str | None = None,
                           session_token_env: str | None = None, overwrite: bool = False,
                           create_if_not_exists: bool = False,
                           skip_validation: bool = False) -> "Datastore":
        """Register an S3 bucket, on AWS or any S3-compatible service (``endpoint_url``).

        Keys come as arguments or from environment variables named by ``*_env``; with neither,
        boto's usual lookup (``AWS_ACCESS_KEY_ID``..., ``~/.aws``) applies, and
        ``anonymous=True`` reads a public bucket.

        Example: ``Datastore.register_s3_bucket(ws, "raw", bucket="raw",
        endpoint_url="http://127.0.0.1:9000", access_key_id_env="S3_KEY",
        secret_access_key_env="S3_SECRET")``.
        """
        if not bucket or not isinstance(bucket, str):
            raise StorageError(f"bucket={bucket!r}: give the bucket's name")
        config = {"bucket": bucket, "endpoint_url": endpoint_url, "region": region,
                  "anonymous": bool(anonymous)}
        secrets = {"access_key_id": access_key_id, "secret_access_key": secret_access_key,
                   "session_token": session_token}
        env = {"access_key_id": access_key_id_env, "secret_access_key": secret_access_key_env,
               "session_token": session_token_env}
        return Datastore._register(workspace, datastore_name, "s3", config, secrets, env,
                                   overwrite, create_if_not_exists, skip_validation)

    @staticmethod
    def register_local(workspace: Workspace, datastore_name: str, path: str | os.PathLike,
                       overwrite: bool = False, create_if_not_exists: bool = False,
                       skip_validation: bool = False) -> "Datastore":
        """Register a local (or mounted network) folder.

        Example: ``Datastore.register_local(ws, datastore_name="scans", path="/data/scans")``.
        """
        config = {"path": os.path.abspath(os.fspath(path))}
        return Datastore._register(workspace, datastore_name, "local", config, {}, {},
                                   overwrite, create_if_not_exists, skip_validation)

    @staticmethod
    def _register(workspace: Workspace, name: str, kind: str, config: dict, secrets: dict,
                  env: dict, overwrite: bool, create: bool, skip_validation: bool) -> "Datastore":
        if not isinstance(name, str) or not _NAME.match(name):
            raise WorkspaceError(f"datastore name {name!r} is not allowed: letters, digits and "
                                 "'_' only (as in Azure ML)")
        secrets = {k: v for k, v in secrets.items() if v}
        env = {k: v for k, v in env.items() if v}
        both = sorted(set(secrets) & set(env))
        if both:
            raise StorageError(f"{both[0]} is given both as a value and as the environment "
                               f"variable {env[both[0]]!r}; give one")
        store = Datastore(workspace, name, kind, config, env, tuple(secrets))
        store._pending_secrets = secrets
        if not skip_validation or create:
            store._check(create)
        del store._pending_secrets
        now = time.time()
        owner = f"datastore:{name}"
        with workspace.catalog.write() as db:
            exists = db.execute("SELECT 1 FROM datastores WHERE name = ?", (name,)).fetchone()
            if exists and not overwrite:
                raise WorkspaceError(f"datastore {name!r} is already registered in workspace "
                                     f"{workspace.name!r}; pass overwrite=True to replace it")
            db.execute("INSERT OR REPLACE INTO datastores (name, kind, config, secret_env, "
                       "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
                       (name, kind, json.dumps(config), json.dumps(env), now, now))
            db.execute("DELETE FROM secrets WHERE owner = ?", (owner,))
            db.executemany("INSERT INTO secrets (owner, name, value) VALUES (?, ?, ?)",
                           [(owner, k, v) for k, v in secrets.items()])
        return Datastore.get(workspace, name)

    # Finding ----------------------------------------------------------------------------------
    @staticmethod
    def get(workspace: Workspace, datastore_name: str) -> "Datastore":
        """The registered datastore ``datastore_name``.

        Example: ``Datastore.get(ws, "mnist_datastore").path("mnist/")``.
        """
        rows = workspace.catalog.query("SELECT * FROM datastores WHERE name = ?", (datastore_name,))
        if not rows:
            names = [r["name"] for r in workspace.catalog.query("SELECT name FROM datastores")]
            raise UnknownNameError(f"no datastore {datastore_name!r} in workspace "
                                   f"{workspace.name!r}; registered: {known(names)}")
        return Datastore._from_row(workspace, rows[0])

    @staticmethod
    def list(workspace: Workspace) -> list["Datastore"]:
        """Every registered datastore, by name."""
        return [Datastore._from_row(workspace, row) for row in
                workspace.catalog.query("SELECT * FROM datastores ORDER BY name")]

    @staticmethod
    def get_default(workspace: Workspace) -> "Datastore":
        return workspace.get_default_datastore()

    @staticmethod
    def _from_row(workspace: Workspace, row) -> "Datastore":
        names = tuple(r["name"] for r in workspace.catalog.query(
            "SELECT name FROM secrets WHERE owner = ? ORDER BY name", (f"datastore:{row['name']}",)))
        store = Datastore(workspace, row["name"], row["kind"], json.loads(row["config"]),
                          json.loads(row["secret_env"]), names)
        if store.storage_kind.remote:
            # plain URL strings under this datastore (`parallelrun run --input az://...`) find
            # its options through the registry, read when used; its own paths carry them
            remote.register_storage_options(
                store.root_url, lambda: store.storage_options, location=store.location,
                owner=store._owner, name=f"datastore {store.name!r}",
                hint=f"Datastore.get(ws, {store.name!r}).path('{{path}}') in Python, "
                     f"azureml://datastores/{store.name}/paths/{{path}} in a job file")
        return store

    @property
    def location(self) -> str:
        """Where the storage is, without secrets (``http://127.0.0.1:10000/devstoreaccount1/
        data``): two datastores with one root URL (a container of one name on two accounts)
        differ here."""
        return self.storage_kind.location(self)

    @property
    def _owner(self) -> str:
        # the registry's name for this datastore: one entry per datastore of a workspace
        return f"datastore {self.name!r} of workspace {self.workspace.path}"

    def unregister(self) -> None:
        """Remove this datastore from the workspace (the data stays where it is)."""
        with self.workspace.catalog.write() as db:
            db.execute("DELETE FROM datastores WHERE name = ?", (self.name,))
            db.execute("DELETE FROM secrets WHERE owner = ?", (f"datastore:{self.name}",))
        remote.forget_storage_options(self._owner)

    # Paths and storage ------------------------------------------------------------------------
    def path(self, path: str = "", data_reference_name: str | None = None) -> "DataPath":
        """A folder, file or glob on this datastore: ``store.path("mnist/")``,
        ``store.path("images/*.png")``."""
        return DataPath(self, path or "")

    def as_mount(self) -> "DataPath":
        return self.path("")

    as_download = as_mount

    @property
    def root_url(self) -> str:
        """``az://container/``, ``s3://bucket/`` or the local folder (with a trailing ``/``)."""
        return self.storage_kind.root_url(self)

    def _secrets(self) -> dict[str, str]:
        """The secrets, read now: from the catalog, or from the environment variables named."""
        values = dict(getattr(self, "_pending_secrets", None) or {})
        if not values and self._secret_names:
            values = {r["name"]: r["value"] for r in self.workspace.catalog.query(
                "SELECT name, value FROM secrets WHERE owner = ?", (f"datastore:{self.name}",))}
        for key, variable in self.secret_env.items():
            if variable not in os.environ:
                raise StorageError(f"datastore {self.name!r} reads its {key} from the environment "
                                   f"variable {variable!r}, which is not set; set it or register "
                                   "the datastore again with overwrite=True")
            values[key] = os.environ[variable]
        return values

    @property
    def storage_options(self) -> dict:
        """fsspec options to open this datastore's URLs, secrets included (resolved now; never
        log or print them)."""
        return self.storage_kind.storage_options(self)

    def _check(self, create: bool) -> None:
        """Reach the storage now, so a wrong name or credential fails at registration."""
        self.storage_kind.check(self, create)

    # Moving data (Azure ML's Datastore.upload / download) -------------------------------------
    def upload(self, src_dir: str | os.PathLike, target_path: str | None = None,
               overwrite: bool = False, show_progress: bool = False) -> "DataPath":
        """Copy the folder ``src_dir`` to ``target_path`` on this datastore.

        Example: ``store.upload("data/images", target_path="mnist/")``.
        """
        target = self.path(target_path or "")
        if not overwrite and target.exists():
            raise StorageError(f"{target.url!r} already holds files; pass overwrite=True")
        remote.upload_tree(os.fspath(src_dir), target.url, self.storage_options)
        return target

    def upload_files(self, files: list, relative_root: str | None = None,
                     target_path: str | None = None, overwrite: bool = False,
                     show_progress: bool = False) -> "DataPath":
        """Copy the given files under ``target_path``, keeping their paths below ``relative_root``."""
        target = self.path(target_path or "")
        fs, root = remote.filesystem(target.url, self.storage_options)
        for path in files:
            path = os.fspath(path)
            rel = os.path.relpath(path, relative_root) if relative_root else os.path.basename(path)
            dest = root.rstrip("/") + "/" + rel.replace(os.sep, "/")
            try:
                if not overwrite and fs.exists(dest):
                    raise StorageError(f"{dest!r} exists; pass overwrite=True")
                fs.put_file(path, dest)
            except StorageError:
                raise
            except Exception as exc:  # noqa: BLE001
                raise remote.storage_error(exc, target.url, "uploading to") from None
        return target

    def download(self, target_path: str | os.PathLike, prefix: str | None = None,
                 overwrite: bool = False, show_progress: bool = False) -> int:
        """Copy the files under ``prefix`` to the local folder ``target_path``; returns how
        many were copied. A file already there is an error unless ``overwrite`` (as for
        :meth:`upload`), raised before anything is copied.

        Example: ``store.download("copy/", prefix="mnist/")``.
        """
        source = self.path(prefix or "")
        return remote.download_tree(source.url, os.fspath(target_path), self.storage_options,
                                    overwrite=overwrite)

    # Showing (never secrets) -------------------------------------------------------------------
    def describe(self) -> dict:
        """What ``show``/``list`` print: where the storage is and how it is reached; credentials
        appear as ``stored`` or ``from $VARIABLE``, never their values."""
        credentials = {name: "stored" for name in self._secret_names}
        credentials.update({name: f"from ${var}" for name, var in self.secret_env.items()})
        credentials = credentials or self.storage_kind.default_credentials(self.config)
        shown = self.storage_kind.shown_config(self)
        return {"name": self.name, "type": self.datastore_type, "url": self.root_url, **shown,
                "credentials": credentials}

    def __getstate__(self):
        # secrets never travel inside the object (only while registering do they sit on it)
        state = dict(self.__dict__)
        state.pop("_pending_secrets", None)
        return state

    def __repr__(self) -> str:
        where = {k: v for k, v in self.config.items() if v is not None}
        return f"Datastore({self.name!r}, {self.datastore_type}, {where})"


class DataPath:
    """A path (folder, file or glob) on a datastore: what ``Datastore.path()`` returns.

    ``url`` is what fsspec opens (``az://container/mnist/``, ``s3://bucket/raw/``, or a local
    path) and ``storage_options`` the options to open it with, read when asked for.

    Example: ``Dataset.File.from_files(path=store.path("mnist/*.png"))``.
    """

    def __init__(self, datastore: Datastore, path_on_datastore: str):
        self.datastore = datastore
        self.path_on_datastore = path_on_datastore.lstrip("/")

    @property
    def remote(self) -> bool:
        return self.datastore.storage_kind.remote

    @property
    def url(self) -> str:
        if self.remote:
            return self.datastore.root_url + self.path_on_datastore
        return os.path.join(self.datastore.path_on_disk, *self.path_on_datastore.split("/")) \
            if self.path_on_datastore else self.datastore.path_on_disk

    @property
    def storage_options(self) -> dict:
        return self.datastore.storage_options

    def exists(self) -> bool:
        if not self.remote:
            path = self.url
            return os.path.isdir(path) and bool(os.listdir(path)) or os.path.isfile(path)
        fs, key = remote.filesystem(self.url, self.storage_options)
        try:
            return fs.exists(key.rstrip("/"))
        except Exception as exc:  # noqa: BLE001
            raise remote.storage_error(exc, self.url, "reading") from None

    def to_record(self) -> dict:
        """How a registered dataset names this path: datastore name and path, no secrets."""
        return {"datastore": self.datastore.name, "path": self.path_on_datastore}

    def __fspath__(self) -> str:
        if self.remote:
            raise TypeError(f"{self.url!r} is not a local path; open it with its storage_options")
        return self.url

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DataPath) and other.url == self.url

    def __hash__(self) -> int:
        return hash(self.url)

    def __str__(self) -> str:
        return self.url

    def __repr__(self) -> str:
        return f"DataPath(datastore={self.datastore.name!r}, path={self.path_on_datastore!r})"

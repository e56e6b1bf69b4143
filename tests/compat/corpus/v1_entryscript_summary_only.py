# EntryScript logging and summary_only outputs written to EntryScript().output_dir.
import os

from azureml_user.parallel_run import EntryScript


def init():
    EntryScript().logger.info("init from %s", EntryScript().agent_name)


def run(mini_batch):
    entry_script = EntryScript()
    logger = entry_script.logger
    out = entry_script.output_dir
    for path in mini_batch:
        name = os.path.basename(path)
        with open(os.path.join(out, name + ".result"), "w") as fh:
            fh.write(str(int(open(path).read()) ** 2))
        logger.info("scored %s", name)
    return mini_batch

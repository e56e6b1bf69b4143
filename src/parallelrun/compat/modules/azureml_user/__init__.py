"""Stand-in for the ``azureml_user`` package inside parallelrun workers."""

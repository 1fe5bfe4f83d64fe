"""The run configuration shared by every layer: its schema and the named checkpoints.

The CLI and app (`ssd`), the pipeline builders (`pipelines`) and the component
executors (`components`) all read it; it depends only on `rankdata` and
`rankers`, so executors never import the app package.
"""

"""Library code the components share; not a component itself.

A component is a folder with component.py and executor.py (or a trainer
module). The modules here are what several of those executors and the
trainer's run_fn import: Examples I/O (example_io), gfile copies and hashes
(fileio), batch and bi-encoder scoring (scoring, embeddings), the hybrid
score (hybrid), the teacher embeddings' on-disk layout (teacher_embeddings)
and the code fingerprint recorded on every node (code_version).
"""

"""Pipeline factories and runners (local DirectRunner; Kubeflow in a later issue)."""

"""Pipeline factory and runners (local: LocalDagRunner; Kubeflow: KubeflowV2DagRunner compile)."""

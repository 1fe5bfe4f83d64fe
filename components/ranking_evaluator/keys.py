"""The RankingEvaluator's keys, file names and artifact property names.

TFX-free (spec.py adds the TFX types and re-exports these), so readers of
its outputs, `ssd lineage` among them, name them without importing TFX.
"""

# Inputs.
EXAMPLES_KEY = 'examples'
MODEL_KEY = 'model'
BASELINE_MODEL_KEY = 'baseline_model'
TEACHER_MODEL_KEY = 'teacher_model'            # for the retention rule
GATE_BLESSING_KEY = 'gate_blessing'            # skip this evaluation unless this is blessed
PRIOR_EVALUATION_KEY = 'prior_evaluation'      # scores to reuse (score_store.py)
# Parameters.
CONFIG_KEY = 'config_json'   # EvaluatorConfig as JSON
# Outputs.
EVALUATION_KEY = 'evaluation'
BLESSING_KEY = 'blessing'
SELECTED_MODEL_KEY = 'selected_model'

METRICS_FILE = 'metrics.json'
# Artifact custom properties a reader can rely on. Models are named by URI,
# never by MLMD id: in a Kubeflow container TFX gives artifacts hashed ids
# that exist in no store.
BLESSED_PROPERTY = 'blessed'   # same key and meaning as TFX's Evaluator (1/0)
CURRENT_MODEL_PROPERTY = 'current_model'      # blessing: the candidate's URI (as TFX's Evaluator)
BASELINE_MODEL_PROPERTY = 'baseline_model'    # blessing: the baseline's URI
LAST_BLESSED_PROPERTY = 'last_blessed_model'  # blessing: the production model's directory
SOURCE_MODEL_PROPERTY = 'source_model'        # selected_model: the URI of the model it copies


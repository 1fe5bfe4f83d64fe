"""The PseudoLabeler's input/output keys and the properties naming its teacher.

TFX-free (spec.py re-exports them), so `ssd lineage` names them without
importing TFX.
"""

# Inputs.
EXAMPLES_KEY = 'examples'
MODEL_KEY = 'model'
# Optional: when this ModelBlessing is not blessed (e.g. the previous round's
# T' did not beat its teacher), the component writes empty splits and skips.
GATE_BLESSING_KEY = 'gate_blessing'
# Parameters.
CONFIG_KEY = 'config_json'   # PseudoLabelConfig as JSON (runconfig.config.to_json)
# Outputs.
PSEUDO_LABELLED_KEY = 'pseudo_labelled'
REPORT_KEY = 'report'

# Custom properties on both outputs naming the teacher.
TEACHER_FINGERPRINT_PROPERTY = 'teacher_fingerprint'
TEACHER_URI_PROPERTY = 'teacher_uri'
TEACHER_ROLE_PROPERTY = 'teacher_role'
# Float property of the pseudo_labelled output: the temperature T of its soft
# labels, softmax(teacher_score / T); in-batch negatives rescale the
# teacher's embedding scores by it.
TEMPERATURE_PROPERTY = 'soft_label_temperature'

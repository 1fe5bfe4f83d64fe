"""Names of the tf.Example features every ranking example carries.

One place for these keys: the ingestion component writes them, trainers,
pseudo-labellers, evaluators and exported serving signatures read them.
"""

QUERY_ID = 'query_id'            # bytes
DOC_ID = 'doc_id'                # bytes
QUERY = 'query'                  # bytes, UTF-8 query text
DOC = 'doc'                      # bytes, UTF-8 document text (title + body)
LABEL = 'label'                  # float graded gain (0..max); absent when unknown
FIRST_STAGE_SCORE = 'first_stage_score'  # float, e.g. BM25 score
FIRST_STAGE_RANK = 'first_stage_rank'    # int, 1-based rank in the first stage

# Split names written by the ingestion component.
SPLIT_TRAIN = 'train'            # labelled queries used for training
SPLIT_DEV = 'dev'                # labelled queries held out for model selection
SPLIT_UNLABELLED = 'unlabelled'  # candidates of queries without labels
SPLIT_TEST = 'test'              # held-out queries, evaluation only
# Labelled queries held out of training AND of every decision: anything fitted
# after training (the hybrid fusion weight) is fitted here, so that dev, which
# decides blessing, judges data nothing was fitted on.
SPLIT_CALIBRATION = 'calibration'
ALL_SPLITS = (SPLIT_TRAIN, SPLIT_DEV, SPLIT_UNLABELLED, SPLIT_TEST, SPLIT_CALIBRATION)
# Splits with true labels in their examples.
LABELLED_SPLITS = (SPLIT_TRAIN, SPLIT_DEV, SPLIT_CALIBRATION)

# Added by the pseudo-labeller (components/pseudo_labeler) to every kept pair.
TEACHER_SCORE = 'teacher_score'   # float, the teacher's raw score (logit / scaled cosine)
SOFT_LABEL = 'soft_label'         # float, softmax(teacher_score / T) over the query's list
HARD_LABEL = 'hard_label'         # float 1/0, top-k of the teacher's ranking of the list
CONFIDENCE = 'confidence'         # float, per-query confidence of the teacher's ranking
TEACHER_ID = 'teacher_id'         # bytes, the teacher's content fingerprint (sha256 prefix)

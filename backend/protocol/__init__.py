"""The protocol between the add-on and the backend, stdlib only: the Blender add-on imports it
too, so both sides of the wire share one definition. Importers name this package; what lives
where:

- request: the job request (JobSettings, JobRequest, the settings' rule table and bounds) and
  RequestError
- engines: the model families a job can run on and what each reads and offers
- schema: the job request as JSON Schema (/openapi.json) and the small validator the result
  files are checked with
- status: a job's status (JobStatus) and the states a job ends in
- replies: the /v1/health and /v1/check replies, typed
- results: job.json and keypoints.json, their schemas and readers
- skeleton: keypoints.json's point layout and the skeleton's bones and colours
- layout: where things live on disk (data, model and environment folders)"""

# Every import below is a re-export: importers name the package, not its modules.
# ruff: noqa: F401

from __future__ import annotations

from .engines import (
    ENGINE_FEATURES,
    ENGINE_LABELS,
    ENGINES,
    MODES,
)
from .layout import (
    ENV_POINTER,
    FOLDER_IN_USE_EXIT,
    LEGACY_ENV,
    MODEL_FOLDER_PARTS,
    active_env_python,
    default_data_dir,
    default_model_dir,
    env_folder,
    env_pointer,
    venv_python,
)
from .replies import (
    CheckReply,
    ClusterHealth,
    ClusterJob,
    ClusterNode,
    HealthReply,
)
from .request import (
    ABSOLUTE_PATH,
    API_PREFIX,
    ATTENTION_CHOICES,
    ESTIMATORS,
    LORA_STRENGTH,
    MAX_ASPECT,
    MAX_CAST,
    MAX_CLIP_FRAMES,
    MAX_INPUT_ASPECT,
    MAX_INPUT_PIXELS,
    MAX_INPUT_SIDE,
    MAX_JSON_DEPTH,
    MAX_LORAS,
    MAX_NAME_CHARS,
    MAX_PATH_CHARS,
    MAX_PIXELS,
    MAX_PROMPT_CHARS,
    MAX_REQUEST_BYTES,
    MAX_SEGMENT_FRAMES,
    MAX_SIDE,
    MEMORY_MODES,
    OVERLAPS,
    SAMPLERS,
    TOKEN_ENV,
    UPLOAD_ID,
    JobRequest,
    JobSettings,
    RequestError,
    check_path,
    check_setting,
    ignored_defaults,
    input_size_problem,
    json_depth_problem,
)
from .results import (
    JOB_JSON_SCHEMA,
    JOB_SCHEMA,
    KEYPOINTS_FORMAT,
    KEYPOINTS_JSON_SCHEMA,
    KEYPOINTS_SCHEMA,
    POSE_POINTS_FORMAT,
    read_job_json,
    read_keypoints_json,
)
from .schema import (
    NO_NUL,
    job_request_schema,
    schema_errors,
)
from .skeleton import (
    BODY_BONES,
    BODY_NAMES,
    BODY_SRC_A,
    BODY_SRC_B,
    FACE_SLICE,
    HAND_EDGES,
    HAND_NAMES,
    LEFT_HAND_SLICE,
    NUM_WHOLEBODY,
    PALETTE,
    RIGHT_HAND_SLICE,
)
from .status import (
    INTERRUPTED_STAGE,
    TERMINAL_STATES,
    JobStatus,
)

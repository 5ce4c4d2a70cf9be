"""Lottery-ticket experiments: a resumable IMP runner with controls, replicates, reports and plots.

The runner only uses the public functions of `ltp_tfmot` (wrapping, snapshots,
rounds), so what it does a user can do by hand. See `LotteryExperiment` and
the `ltp-tfmot` command line (`ltp_tfmot.cli`).
"""

from ltp_tfmot.experiment.config import CONTROLS
from ltp_tfmot.experiment.config import DataConfig
from ltp_tfmot.experiment.config import PruningConfig
from ltp_tfmot.experiment.config import RunConfig
from ltp_tfmot.experiment.config import TrainingConfig
from ltp_tfmot.experiment.data import load_cifar10
from ltp_tfmot.experiment.data import load_data
from ltp_tfmot.experiment.data import load_tfds
from ltp_tfmot.experiment.data import read_cifar10
from ltp_tfmot.experiment.models import model_names
from ltp_tfmot.experiment.models import MODELS
from ltp_tfmot.experiment.pipeline import augment_images
from ltp_tfmot.experiment.pipeline import train_dataset
from ltp_tfmot.experiment.plots import plot_accuracy
from ltp_tfmot.experiment.presets import expand_layer_rates
from ltp_tfmot.experiment.presets import get_preset
from ltp_tfmot.experiment.presets import Preset
from ltp_tfmot.experiment.presets import preset_names
from ltp_tfmot.experiment.recipes import build_training
from ltp_tfmot.experiment.recipes import L2Adam
from ltp_tfmot.experiment.recipes import L2SGD
from ltp_tfmot.experiment.recipes import parse_duration
from ltp_tfmot.experiment.recipes import WarmupDecaySchedule
from ltp_tfmot.experiment.report import load_run
from ltp_tfmot.experiment.report import markdown_report
from ltp_tfmot.experiment.report import markdown_table
from ltp_tfmot.experiment.report import summarize
from ltp_tfmot.experiment.report import write_report
from ltp_tfmot.experiment.runner import flat_metrics
from ltp_tfmot.experiment.runner import load_trained_model
from ltp_tfmot.experiment.runner import LotteryExperiment
from ltp_tfmot.experiment.runner import run_experiment
from ltp_tfmot.experiment.runner import WorkerLostError
from ltp_tfmot.experiment.storage import CorruptFileError
from ltp_tfmot.experiment.storage import find_runs
from ltp_tfmot.experiment.storage import load_level_metrics
from ltp_tfmot.experiment.storage import load_masks
from ltp_tfmot.experiment.storage import StorageError

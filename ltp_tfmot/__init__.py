"""ltp_tfmot: lottery-ticket pruning for Keras, built on the TensorFlow Model Optimization Toolkit.

The whole public API is re-exported here.
"""

from ltp_tfmot.callbacks import LotterySummaries
from ltp_tfmot.callbacks import UpdateLotteryStep
from ltp_tfmot.compat import LotteryTicketPruner
from ltp_tfmot.compat import PrunerCallback
from ltp_tfmot.criteria import Criterion
from ltp_tfmot.criteria import criterion_names
from ltp_tfmot.criteria import get_criterion
from ltp_tfmot.criteria import register_criterion
from ltp_tfmot.export import export_tflite
from ltp_tfmot.export import ExportReport
from ltp_tfmot.export import load_tflite
from ltp_tfmot.masks import keep_top_k
from ltp_tfmot.prune import custom_objects
from ltp_tfmot.prune import prune_lottery_ticket
from ltp_tfmot.prune import prune_scope
from ltp_tfmot.prune import strip_pruning
from ltp_tfmot.rounds import apply_masks
from ltp_tfmot.rounds import compute_next_masks
from ltp_tfmot.rounds import layer_sparsity
from ltp_tfmot.rounds import lottery_wrappers
from ltp_tfmot.rounds import reset_optimizer
from ltp_tfmot.rounds import rewind_weights
from ltp_tfmot.rounds import run_lottery_round
from ltp_tfmot.rounds import steps_done
from ltp_tfmot.rounds import take_snapshot
from ltp_tfmot.rounds import weights_remaining
from ltp_tfmot.schedule import LotteryTicketSchedule
from ltp_tfmot.schedule import OneShotLotterySchedule
from ltp_tfmot.tickets import load_ticket
from ltp_tfmot.tickets import read_ticket
from ltp_tfmot.tickets import save_ticket
from ltp_tfmot.tickets import Ticket
from ltp_tfmot.tickets import TicketFileError
from ltp_tfmot.wrapper import PruneLotteryTicket

__version__ = '0.1.0'

"""Per-model presets, the papers' set-ups: those of `ltp_tfmot.zoo`, under the old path.

Each family module of `ltp_tfmot.zoo` declares its presets, `zoo.preset`
holds `Preset` and `expand_layer_rates`, and `zoo.registry` finds a preset by
name; this module keeps `ltp_tfmot.experiment.presets` naming the same
objects, for the runner's config and code written before the zoo.
"""

from ltp_tfmot.zoo.preset import expand_layer_rates
from ltp_tfmot.zoo.preset import FRANKLE_2020
from ltp_tfmot.zoo.preset import FRANKLE_CARBIN_2019
from ltp_tfmot.zoo.preset import OPEN_LTH
from ltp_tfmot.zoo.preset import Preset
from ltp_tfmot.zoo.preset import SCOPES
from ltp_tfmot.zoo.registry import get_preset
from ltp_tfmot.zoo.registry import preset_names
from ltp_tfmot.zoo.registry import PRESETS

__all__ = ['expand_layer_rates', 'FRANKLE_2020', 'FRANKLE_CARBIN_2019', 'get_preset', 'OPEN_LTH', 'Preset',
           'preset_names', 'PRESETS', 'SCOPES']

"""The models the runner and the command line know by name: the networks of `ltp_tfmot.zoo`, under the old path.

The networks and their registry live in `ltp_tfmot.zoo` (`zoo.registry`);
this module keeps `ltp_tfmot.experiment.models` naming the same objects, for
the runner, the command line and code written before the zoo.
"""

from ltp_tfmot.zoo.network import ModelSpec
from ltp_tfmot.zoo.registry import get_model_spec
from ltp_tfmot.zoo.registry import model_names
from ltp_tfmot.zoo.registry import MODELS
from ltp_tfmot.zoo.resnet import RESNET_DEPTHS
from ltp_tfmot.zoo.vgg import VGG_CONVS

__all__ = ['get_model_spec', 'model_names', 'MODELS', 'ModelSpec', 'RESNET_DEPTHS', 'VGG_CONVS']

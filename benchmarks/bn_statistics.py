"""Why do the first epochs validate low? Re-estimate BatchNormalization's moving statistics of a trained
model on 10,000 training images and evaluate again on the test set. A large jump means the weights were fine
and the moving statistics (momentum 0.99) had not caught up with them.
    python benchmarks/bn_statistics.py RUN_DIR...      (e.g. one-epoch runs with different --seed)
"""
import json
import os
import sys

import numpy as np
from sepspec.lazy import import_keras
keras = import_keras()
from sepspec.train.data import load_cifar
from sepspec.train.pipeline import normalize
d = load_cifar(os.environ.get('SEPSPEC_DATA') or '../shared/data/cifar-10-python.tar.gz', download=False)
for run in sys.argv[1:]:
    m = json.load(open(f'{run}/metrics.json'))
    mean, std = np.float32(m['normalization']['mean']), np.float32(m['normalization']['std'])
    model = keras.saving.load_model(f'{run}/best.keras')
    xt = normalize(d.x_test, mean, std)
    yt = keras.utils.to_categorical(d.y_test, 10)
    before = model.evaluate(xt, yt, batch_size=500, verbose=0)[1]
    # re-estimate: cumulative average of batch statistics over 10,000 training images, in inference weights
    bns = [l for l in model.layers if isinstance(l, keras.layers.BatchNormalization)]
    xs = normalize(d.x_train[:10000], mean, std)
    for l in bns:
        l.moving_mean.assign(np.zeros(l.moving_mean.shape, 'float32')); l.moving_variance.assign(np.ones(l.moving_variance.shape, 'float32'))
    for i, b in enumerate(range(0, len(xs), 250)):
        for l in bns:
            l.momentum = i / (i + 1)  # running mean of the batch statistics
        model(xs[b:b + 250], training=True)
    after = model.evaluate(xt, yt, batch_size=500, verbose=0)[1]
    print(f'{run}: test accuracy with the trained moving statistics {100*before:.1f}%, with re-estimated statistics {100*after:.1f}%')

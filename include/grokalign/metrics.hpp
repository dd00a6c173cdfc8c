#pragma once
// Metrics for the experiments: accuracy (argmax, sign, sigmoid; in chunks; under input
// noise), robust accuracy under L-infinity PGD and APGD-CE, Fourier analysis for modular
// addition, and the reference's log-spaced logging steps. See docs/metrics.md.
#include "grokalign/metrics/accuracy.hpp"
#include "grokalign/metrics/attacks.hpp"
#include "grokalign/metrics/fourier.hpp"
#include "grokalign/metrics/log_steps.hpp"

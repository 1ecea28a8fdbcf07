/* A small multilayer perceptron in C for the progressive-training example: 8 -> 32 -> 16 -> 1,
 * ReLU, one logit out, binary cross-entropy on the logit (mean over the batch), Adam. The same
 * network, initialization and optimizer settings as examples/progressive_training.py's PyTorch
 * model (nn.Linear's default uniform initialization, Adam lr 1e-3, betas 0.9/0.999, eps 1e-8).
 * float32 like PyTorch's default. Not thread-safe: one model per thread. */
#ifndef EXAMPLES_MLP_H
#define EXAMPLES_MLP_H

#include <stddef.h>
#include <stdint.h>

#define MLP_IN 8
#define MLP_H1 32
#define MLP_H2 16
/* weights and biases of the three layers, in one array */
#define MLP_PARAMS (MLP_H1 * MLP_IN + MLP_H1 + MLP_H2 * MLP_H1 + MLP_H2 + MLP_H2 + 1)

/* A model with its training state: parameters, gradients and Adam's two moments (four arrays of
 * MLP_PARAMS floats: what a copy of a model in training needs). */
typedef struct mlp {
  float p[MLP_PARAMS];
  float grad[MLP_PARAMS];
  float m[MLP_PARAMS], v[MLP_PARAMS];
  long step; /* Adam's step count */
} mlp;

/* Per-batch activations kept for the backward pass. */
typedef struct mlp_scratch {
  size_t batch;
  float *h1, *h2, *z; /* batch x H1, batch x H2, batch */
} mlp_scratch;

/* A deterministic generator (splitmix64) for initialization and shuffling. */
uint64_t mlp_rng_next(uint64_t *state);

/* Fresh parameters: each layer's weights and biases uniform in +-1/sqrt(fan_in); Adam reset. */
void mlp_init(mlp *m, uint64_t *rng);
/* A warm start: src's parameters, fresh gradients and Adam state (as a new torch optimizer). */
void mlp_copy_weights(mlp *dst, const mlp *src);

mlp_scratch *mlp_scratch_create(size_t batch);
void mlp_scratch_free(mlp_scratch *s);

/* One Adam step on the batch x[0..n) (row-major, MLP_IN each), labels y (0 or 1); n <= the
 * scratch's batch. Returns the batch's mean loss. */
float mlp_train_step(mlp *m, mlp_scratch *s, const float *x, const float *y, size_t n, float lr);
/* Logits of n samples. */
void mlp_predict(const mlp *m, const float *x, size_t n, float *logits);

#endif

/* The example's MLP: forward, backward, Adam. See mlp.h. The three phases of a step are profiled
 * zones (mlp_forward, mlp_backward, adam_step): one zone per batch, not per sample, so profiling
 * costs a few timestamp reads per 256 samples. */
#include "mlp.h"

#include "perfopt.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* offsets of each layer's weights and biases in mlp.p */
#define W1 0
#define B1 (W1 + MLP_H1 * MLP_IN)
#define W2 (B1 + MLP_H1)
#define B2 (W2 + MLP_H2 * MLP_H1)
#define W3 (B2 + MLP_H2)
#define B3 (W3 + MLP_H2)

uint64_t mlp_rng_next(uint64_t *state) {
  uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static float uniform(uint64_t *rng, float bound) {
  double u = (double)(mlp_rng_next(rng) >> 11) * 0x1.0p-53; /* [0, 1) */
  return (float)((2.0 * u - 1.0) * bound);
}

static void init_layer(float *w, float *b, int out, int in, uint64_t *rng) {
  float bound = 1.0f / sqrtf((float)in);
  for (int i = 0; i < out * in; i++) w[i] = uniform(rng, bound);
  for (int i = 0; i < out; i++) b[i] = uniform(rng, bound);
}

static void reset_training_state(mlp *m) {
  memset(m->grad, 0, sizeof m->grad);
  memset(m->m, 0, sizeof m->m);
  memset(m->v, 0, sizeof m->v);
  m->step = 0;
}

void mlp_init(mlp *m, uint64_t *rng) {
  init_layer(m->p + W1, m->p + B1, MLP_H1, MLP_IN, rng);
  init_layer(m->p + W2, m->p + B2, MLP_H2, MLP_H1, rng);
  init_layer(m->p + W3, m->p + B3, 1, MLP_H2, rng);
  reset_training_state(m);
}

void mlp_copy_weights(mlp *dst, const mlp *src) {
  memcpy(dst->p, src->p, sizeof dst->p);
  reset_training_state(dst);
}

mlp_scratch *mlp_scratch_create(size_t batch) {
  mlp_scratch *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  s->batch = batch;
  s->h1 = malloc(batch * MLP_H1 * sizeof(float));
  s->h2 = malloc(batch * MLP_H2 * sizeof(float));
  s->z = malloc(batch * sizeof(float));
  if (!s->h1 || !s->h2 || !s->z) {
    mlp_scratch_free(s);
    return NULL;
  }
  return s;
}

void mlp_scratch_free(mlp_scratch *s) {
  if (!s) return;
  free(s->h1), free(s->h2), free(s->z);
  free(s);
}

/* One sample: hidden activations into h1/h2 (after ReLU); returns the logit. */
static float forward_one(const float *p, const float *x, float *h1, float *h2) {
  for (int j = 0; j < MLP_H1; j++) {
    float a = p[B1 + j];
    const float *w = p + W1 + j * MLP_IN;
    for (int k = 0; k < MLP_IN; k++) a += w[k] * x[k];
    h1[j] = a > 0 ? a : 0;
  }
  for (int j = 0; j < MLP_H2; j++) {
    float a = p[B2 + j];
    const float *w = p + W2 + j * MLP_H1;
    for (int k = 0; k < MLP_H1; k++) a += w[k] * h1[k];
    h2[j] = a > 0 ? a : 0;
  }
  float z = p[B3];
  for (int k = 0; k < MLP_H2; k++) z += p[W3 + k] * h2[k];
  return z;
}

static void mlp_forward(const mlp *m, mlp_scratch *s, const float *x, size_t n) {
  PO_PROFILE_FUNCTION();
  for (size_t i = 0; i < n; i++)
    s->z[i] = forward_one(m->p, x + i * MLP_IN, s->h1 + i * MLP_H1, s->h2 + i * MLP_H2);
}

/* Binary cross-entropy on the logit, stable form: max(z, 0) - z y + log(1 + exp(-|z|)). */
static float bce(float z, float y) {
  return fmaxf(z, 0) - z * y + log1pf(expf(-fabsf(z)));
}

/* Gradients of the mean loss into m->grad; returns the mean loss. */
static float mlp_backward(mlp *m, const mlp_scratch *s, const float *x, const float *y, size_t n) {
  PO_PROFILE_FUNCTION();
  float *g = m->grad;
  const float *p = m->p;
  memset(g, 0, sizeof m->grad);
  double loss = 0;
  float inv_n = 1.0f / (float)n;
  for (size_t i = 0; i < n; i++) {
    const float *h1 = s->h1 + i * MLP_H1, *h2 = s->h2 + i * MLP_H2, *xi = x + i * MLP_IN;
    float z = s->z[i];
    loss += bce(z, y[i]);
    float dz = (1.0f / (1.0f + expf(-z)) - y[i]) * inv_n;
    float da2[MLP_H2], dh1[MLP_H1] = {0};
    g[B3] += dz;
    for (int k = 0; k < MLP_H2; k++) {
      g[W3 + k] += dz * h2[k];
      da2[k] = h2[k] > 0 ? dz * p[W3 + k] : 0;
    }
    for (int j = 0; j < MLP_H2; j++) {
      if (da2[j] == 0) continue;
      g[B2 + j] += da2[j];
      float *gw = g + W2 + j * MLP_H1;
      const float *w = p + W2 + j * MLP_H1;
      for (int k = 0; k < MLP_H1; k++) {
        gw[k] += da2[j] * h1[k];
        dh1[k] += da2[j] * w[k];
      }
    }
    for (int j = 0; j < MLP_H1; j++) {
      if (h1[j] <= 0 || dh1[j] == 0) continue;
      g[B1 + j] += dh1[j];
      float *gw = g + W1 + j * MLP_IN;
      for (int k = 0; k < MLP_IN; k++) gw[k] += dh1[j] * xi[k];
    }
  }
  return (float)(loss / (double)n);
}

/* torch.optim.Adam's update (no weight decay, no amsgrad). */
static void adam_step(mlp *m, float lr) {
  PO_PROFILE_FUNCTION();
  const float b1 = 0.9f, b2 = 0.999f, eps = 1e-8f;
  m->step++;
  float bc1 = 1.0f - powf(b1, (float)m->step), bc2 = 1.0f - powf(b2, (float)m->step);
  float step_size = lr / bc1, sqrt_bc2 = sqrtf(bc2);
  for (int i = 0; i < MLP_PARAMS; i++) {
    float g = m->grad[i];
    m->m[i] = b1 * m->m[i] + (1 - b1) * g;
    m->v[i] = b2 * m->v[i] + (1 - b2) * g * g;
    m->p[i] -= step_size * m->m[i] / (sqrtf(m->v[i]) / sqrt_bc2 + eps);
  }
}

float mlp_train_step(mlp *m, mlp_scratch *s, const float *x, const float *y, size_t n, float lr) {
  if (n == 0 || n > s->batch) return NAN;
  mlp_forward(m, s, x, n);
  float loss = mlp_backward(m, s, x, y, n);
  adam_step(m, lr);
  return loss;
}

void mlp_predict(const mlp *m, const float *x, size_t n, float *logits) {
  PO_PROFILE_FUNCTION();
  float h1[MLP_H1], h2[MLP_H2];
  for (size_t i = 0; i < n; i++) logits[i] = forward_one(m->p, x + i * MLP_IN, h1, h2);
}

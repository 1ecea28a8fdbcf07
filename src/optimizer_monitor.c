/* The public monitor and memory API on an optimizer (NULL: the default one): each function hands
 * its call to the optimizer's sampler or memory engine. */
#include "optimizer.h"

static po__sampler *sampler_of(po_optimizer *opt) {
  opt = po__opt_or_default(opt);
  return opt ? opt->sampler : NULL;
}

static po__memory *memory_of(po_optimizer *opt) {
  opt = po__opt_or_default(opt);
  return opt ? opt->memory : NULL;
}

int po_monitor_start(po_optimizer *opt) {
  return po__sampler_start(sampler_of(opt));
}

int po_monitor_stop(po_optimizer *opt) {
  return po__sampler_stop(sampler_of(opt));
}

int po_monitor_running(po_optimizer *opt) {
  return po__sampler_running(sampler_of(opt));
}

int po_monitor_sample_now(po_optimizer *opt, po_sample *out) {
  return po__sampler_sample_now(sampler_of(opt), out);
}

int po_monitor_latest(po_optimizer *opt, po_sample *out) {
  return po__sampler_latest(sampler_of(opt), out);
}

int po_monitor_get_stats(po_optimizer *opt, po_monitor_stats *out) {
  return po__sampler_get_stats(sampler_of(opt), out);
}

int po_monitor_add_pressure_listener(po_optimizer *opt, const char *name, po_pressure_fn fn,
                                     void *user, int *id_out) {
  return po__memory_add_listener(memory_of(opt), name, fn, user, id_out);
}

int po_monitor_remove_pressure_listener(po_optimizer *opt, int id) {
  return po__memory_remove_listener(memory_of(opt), id);
}

int po_cleanup_register(po_optimizer *opt, const char *name, po_resource_type type, int priority,
                        po_cleanup_level min_level, po_cleanup_fn fn, void *user, int *id_out) {
  return po__memory_register(memory_of(opt), name, type, priority, min_level, fn, user, id_out);
}

int po_cleanup_unregister(po_optimizer *opt, int id) {
  return po__memory_unregister(memory_of(opt), id);
}

int po_checkpoint_register(po_optimizer *opt, const char *name, po_checkpoint_fn fn, void *user,
                           int *id_out) {
  return po__memory_add_checkpoint(memory_of(opt), name, fn, user, id_out);
}

int po_checkpoint_unregister(po_optimizer *opt, int id) {
  return po__memory_remove_checkpoint(memory_of(opt), id);
}

int po_optimize_memory(po_optimizer *opt, po_cleanup_level level, po_cleanup_result *out) {
  po_pressure_event ev = {
      po__run_seconds(), PO_METRIC_MANUAL, -1, 0, 0, level, NULL, PO_GRADE_NONE, -1};
  return po__memory_cleanup(memory_of(opt), level, PO_RESOURCE_ALL, 0, &ev, out, NULL);
}

int po_clear_resource(po_optimizer *opt, po_resource_type type, po_cleanup_level level,
                      po_cleanup_result *out) {
  if ((int)type < 0 || (int)type >= PO_CACHE_TYPE_COUNT) return PO_EINVAL;
  /* An explicit request for one type: all its handlers run, whatever their min_level. */
  return po__memory_cleanup(memory_of(opt), level, (int)type, 1, NULL, out, NULL);
}

int po_guard_run(po_optimizer *opt, int64_t required_bytes, po_guard_fn primary,
                 po_guard_fn fallback, void *ctx, const po_guard_options *o, po_guard_result *out) {
  return po__memory_guard(memory_of(opt), required_bytes, primary, fallback, ctx, o, out);
}

/* opt NULL means "no optimizer" here: the machine is probed directly. */
int po_batch_advise(po_optimizer *opt, const po_batch_request *req, int64_t *batch_out) {
  return po__memory_batch_advise(opt ? opt->memory : NULL, req, batch_out);
}

/* opt NULL means "no optimizer" here too. */
int po_batch_probe(po_optimizer *opt, po_batch_step_fn step, void *user,
                   const po_batch_probe_options *o, po_batch_probe_result *out) {
  return po__memory_batch_probe(opt ? opt->memory : NULL, step, user, o, out);
}

int po_phase_begin(po_optimizer *opt, const char *name) {
  return po__memory_phase_begin(memory_of(opt), name);
}

int po_phase_end(po_optimizer *opt) {
  return po__memory_phase_end(memory_of(opt));
}

int po_phase_set_cleanup(po_optimizer *opt, int level) {
  return po__memory_phase_set_cleanup(memory_of(opt), level);
}

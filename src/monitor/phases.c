/* Phases: named spans of the run (training buckets), with optional cleanup between them. */
#include "monitor/memory.h"

static void end_open_phase(po__memory *m) {
  if (m->phase_open) {
    m->phases[m->phase_open - 1].end_seconds = po__run_seconds();
    m->phase_open = 0;
  }
}

int po__memory_phase_begin(po__memory *m, const char *name) {
  if (!m || !name) return PO_EINVAL;
  pthread_mutex_lock(&m->mu);
  int open = m->phase_open;
  pthread_mutex_unlock(&m->mu);
  if (open) po__memory_phase_end(m); /* with its cleanup between phases, when asked */
  pthread_mutex_lock(&m->mu);
  end_open_phase(m);
  if (m->nphases >= PO__MAX_PHASES) {
    m->phases_dropped++;
  } else {
    po__phase *p = &m->phases[m->nphases++];
    po__strlcpy(p->name, name, sizeof(p->name));
    p->start_seconds = po__run_seconds();
    p->end_seconds = -1;
    m->phase_open = (int)m->nphases;
  }
  pthread_mutex_unlock(&m->mu);
  return 0;
}

int po__memory_phase_end(po__memory *m) {
  if (!m) return PO_EINVAL;
  pthread_mutex_lock(&m->mu);
  end_open_phase(m);
  int level = m->phase_cleanup_level;
  pthread_mutex_unlock(&m->mu);
  if (level != PO_CLEANUP_NORMAL && level != PO_CLEANUP_AGGRESSIVE) return 0;
  po_pressure_event ev = {po__run_seconds(), PO_METRIC_MANUAL, -1, 0, 0, (po_cleanup_level)level,
                          NULL, PO_GRADE_NONE, -1};
  return po__memory_cleanup(m, (po_cleanup_level)level, PO_RESOURCE_ALL, 0, &ev, NULL, NULL);
}

int po__memory_phase_set_cleanup(po__memory *m, int level) {
  if (!m || level < -1 || level > PO_CLEANUP_AGGRESSIVE) return PO_EINVAL;
  pthread_mutex_lock(&m->mu);
  m->phase_cleanup_level = level;
  pthread_mutex_unlock(&m->mu);
  return 0;
}

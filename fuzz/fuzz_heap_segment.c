/* libFuzzer: the heap tracker's shared segment as a hostile child could leave it. The parser and
 * the report builder must never crash or read out of bounds, whatever the bytes.
 *
 * A segment is megabytes, so the input is an edit script over a valid one (a header and two
 * process slots, the first active): byte 0 selects header overlays (bit 0) and the claimed slot
 * count (bits 1-2); then records of [u32 offset][u16 length][bytes] overwrite the segment at
 * offset modulo its size. Symbolization is off (no files are opened while fuzzing).
 */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "monitor/heap_session.h"
#include "report/report_heap.h"

#define SLOTS 2u
#define SEG_BYTES (PO_HEAP_HEADER_BYTES + SLOTS * sizeof(po_heap_proc))

static uint8_t *seg;

/* The valid segment the edits apply to (zeroed once; edits are undone after each input). */
static void reset(void) {
  po_heap_header *h = (po_heap_header *)seg;
  h->magic = PO_HEAP_MAGIC;
  h->version = PO_HEAP_VERSION;
  h->header_bytes = PO_HEAP_HEADER_BYTES;
  h->total_bytes = PO_HEAP_SEGMENT_BYTES;
  h->mode = PO_HEAP_MODE_FULL;
  h->max_procs = PO_HEAP_MAX_PROCS;
  h->max_threads = PO_HEAP_MAX_THREADS;
  h->max_sites = PO_HEAP_MAX_SITES;
  h->max_frames = PO_HEAP_MAX_FRAMES;
  h->max_modules = PO_HEAP_MAX_MODULES;
  h->proc_bytes = sizeof(po_heap_proc);
  h->hist_buckets = PO_HEAP_HIST_BUCKETS;
  h->procs_claimed = 1;
  po_heap_proc *p = (po_heap_proc *)(seg + PO_HEAP_HEADER_BYTES);
  p->state = PO_HEAP_SLOT_EXITED;
  p->mode = PO_HEAP_MODE_FULL;
  p->pid = 1;
  p->parent_slot = -1;
}

/* Applies the edit records from data[i..size): copies them in, or (undo) zeroes what they wrote. */
static void edit(const uint8_t *data, size_t size, size_t i, int undo) {
  while (i + 6 <= size) {
    uint32_t off;
    uint16_t len;
    memcpy(&off, data + i, 4);
    memcpy(&len, data + i + 4, 2);
    i += 6;
    off %= (uint32_t)SEG_BYTES;
    size_t n = len;
    if (n > size - i) n = size - i;
    if (n > SEG_BYTES - off) n = SEG_BYTES - off;
    if (undo) {
      memset(seg + off, 0, n);
    } else {
      memcpy(seg + off, data + i, n);
    }
    i += n;
  }
}

static void parse_and_report(void);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!seg && !(seg = calloc(1, SEG_BYTES))) return 0;
  if (size == 0) return 0;
  reset();
  uint8_t flags = data[0];
  ((po_heap_header *)seg)->procs_claimed = (flags >> 1) & 3u;
  size_t i = 1;
  if (flags & 1u) { /* the header itself is fair game */
    size_t n = size - 1 < sizeof(po_heap_header) ? size - 1 : sizeof(po_heap_header);
    memcpy(seg, data + 1, n);
    i += n;
  }
  edit(data, size, i, 0);
  parse_and_report();
  memset(seg, 0, sizeof(po_heap_header)); /* reset() rewrites it and slot 0's fields */
  edit(data, size, i, 1);
  return 0;
}

static void parse_and_report(void) {
  po__heap_parse_opts opts = {.top_sites = 5, .symbolize = 0};
  po_heap_snapshot *snap = NULL;
  if (po__heap_parse(seg, SEG_BYTES, &opts, &snap) != 0) return;
  cJSON *memory = cJSON_CreateObject();
  if (memory) {
    po__report_add_heap(memory, snap);
    char *text = cJSON_PrintUnformatted(memory);
    free(text);
    cJSON_Delete(memory);
  }
  po_heap_snapshot_destroy(snap);
}

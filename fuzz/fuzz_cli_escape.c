/* libFuzzer: the CLI's terminal escaping (cli/terminal.c), which decodes UTF-8. Whatever the
 * bytes, the output holds no C0 control but tab (and newline when kept), no DEL, no C1 control
 * (U+0080..U+009F) and only valid UTF-8; text without any of those passes through unchanged; the
 * bounded form always terminates within its buffer. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../cli/terminal.c"

/* 1 when s[0..n) is valid UTF-8 with no C1 control. */
static int clean_utf8(const unsigned char *s, size_t n) {
  for (size_t i = 0; i < n;) {
    if (s[i] < 0x80) {
      i++;
      continue;
    }
    size_t len = utf8_len(s + i, n - i);
    if (len == 0 || (s[i] == 0xC2 && s[i + 1] < 0xA0)) return 0;
    i += len;
  }
  return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  for (int keep = 0; keep < 2; keep++) {
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    if (!f) return 0;
    if (po_cli_write_escaped(f, (const char *)data, size, keep) != 0) abort();
    fclose(f);
    for (size_t i = 0; i < len; i++) {
      unsigned char c = (unsigned char)out[i];
      if ((c < 0x20 && c != '\t' && !(keep && c == '\n')) || c == 0x7F) abort();
    }
    if (!clean_utf8((const unsigned char *)out, len)) abort();
    if (clean_utf8(data, size)) { /* nothing to escape: unchanged */
      int plain = 1;
      for (size_t i = 0; i < size; i++)
        plain &= !((data[i] < 0x20 && data[i] != '\t' && !(keep && data[i] == '\n')) ||
                   data[i] == 0x7F);
      if (plain && (len != size || memcmp(out, data, size) != 0)) abort();
    }
    free(out);
  }
  char *s = malloc(size + 1), buf[64];
  if (!s) return 0;
  memcpy(s, data, size);
  s[size] = '\0';
  po_cli_escape(s, buf, sizeof buf);
  if (strlen(buf) >= sizeof buf) abort();
  free(s);
  return 0;
}

/* Private interface between the downsampling files. */
#ifndef PO__DOWNSAMPLE_H
#define PO__DOWNSAMPLE_H

#include <stddef.h>

#define PO__DS_NONE ((size_t)-1)

/* First minimum, first maximum and first NaN of y[0, n) (PO__DS_NONE when there is none),
 * with the fastest kernel the CPU has. */
void po__ds_extremes(const double *y, size_t n, size_t *imin, size_t *imax, size_t *igap);

#endif

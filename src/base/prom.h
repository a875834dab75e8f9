/* prom.h: Prometheus text exposition (format 0.0.4) for /metrics: each metric's HELP and
 * TYPE lines, then its samples. Every module that keeps counters renders them with these,
 * so the format lives in one place. */
#ifndef PARLEY_BASE_PROM_H
#define PARLEY_BASE_PROM_H

#include "base/buf.h"

#include <stdint.h>

/* "# HELP name help" and "# TYPE name type" (type: counter, gauge, histogram); the
 * caller then appends the samples, e.g. labelled ones. */
void prom_head(buf_t *b, const char *type, const char *name, const char *help);
/* A metric with one unlabelled sample: its head, then "name value". */
void prom_metric(buf_t *b, const char *type, const char *name, const char *help, uint64_t value);

#endif

/* prom.c: Prometheus text exposition helpers (see prom.h). */
#include "base/prom.h"

void prom_head(buf_t *b, const char *type, const char *name, const char *help)
{
    buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void prom_metric(buf_t *b, const char *type, const char *name, const char *help, uint64_t value)
{
    prom_head(b, type, name, help);
    buf_printf(b, "%s %llu\n", name, (unsigned long long)value);
}

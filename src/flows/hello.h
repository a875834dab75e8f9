/* hello.h: the "Hello world!" flow set every new project is created with (hello.c). */
#ifndef PARLEY_FLOWS_HELLO_H
#define PARLEY_FLOWS_HELLO_H

#include "base/err.h"
#include "store/store.h"

/* The default flows.json (a static string). */
const char *flows_hello_flows(void);
/* Deploy it for a new project (inside the caller's transaction; tenant_project_hook). */
int flows_hello_deploy(store_conn_t *c, const char *project_id, err_t *e);

#endif

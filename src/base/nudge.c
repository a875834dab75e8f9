/* nudge.c: an eventfd plus a thread-local pending flag (see nudge.h). */
#include "base/nudge.h"

#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>

static int nudge_efd = -1;
static __thread int nudge_pending;

int nudge_init(void)
{
    if (nudge_efd < 0) nudge_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    return nudge_efd < 0 ? -1 : 0;
}

int nudge_fd(void)
{
    return nudge_efd;
}

void nudge_mark(void)
{
    nudge_pending = 1;
}

void nudge_flush(void)
{
    if (!nudge_pending || nudge_efd < 0) return;
    nudge_pending = 0;
    uint64_t one = 1;
    ssize_t w = write(nudge_efd, &one, sizeof one);
    (void)w; /* a full counter already means "wake up" */
}

void nudge_drain(void)
{
    uint64_t v;
    ssize_t r = read(nudge_efd, &v, sizeof v);
    (void)r;
}

/* nudge.c: an eventfd plus a thread-local pending flag (see nudge.h). */
#include "base/nudge.h"

#include <pthread.h>
#include <stdint.h>
#include <time.h>
#include <sys/eventfd.h>
#include <unistd.h>

static int nudge_efd = -1;
static __thread int nudge_pending, nudge_stream_pending;
static pthread_mutex_t nudge_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t nudge_cv = PTHREAD_COND_INITIALIZER;
static unsigned long nudge_gen;

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

void nudge_mark_stream(void)
{
    nudge_stream_pending = 1;
}

void nudge_flush(void)
{
    if (nudge_stream_pending) {
        nudge_stream_pending = 0;
        nudge_wake_all();
    }
    if (!nudge_pending) return;
    nudge_pending = 0;
    if (nudge_efd < 0) return;
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

void nudge_wake_all(void)
{
    pthread_mutex_lock(&nudge_mu);
    nudge_gen++;
    pthread_cond_broadcast(&nudge_cv);
    pthread_mutex_unlock(&nudge_mu);
}

int nudge_wait(unsigned long *seen, int timeout_ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += timeout_ms / 1000;
    ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&nudge_mu);
    int rc = 0;
    while (nudge_gen == *seen && rc == 0)
        rc = pthread_cond_timedwait(&nudge_cv, &nudge_mu, &ts);
    int woken = nudge_gen != *seen;
    *seen = nudge_gen;
    pthread_mutex_unlock(&nudge_mu);
    return woken;
}

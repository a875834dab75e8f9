/* nudge.h: wake a background worker right after a commit that gave it work. Producers
 * mark work inside their transaction (nudge_mark: a thread-local flag, so a rollback costs
 * at most one spurious wake-up) and flush after committing (nudge_flush: one eventfd write);
 * the worker polls nudge_fd together with its sockets. Without nudges the worker would
 * still find the work on its periodic poll, only later. */
#ifndef PARLEY_BASE_NUDGE_H
#define PARLEY_BASE_NUDGE_H

/* Create the eventfd (once, before threads start). -1 on failure. */
int nudge_init(void);
int nudge_fd(void);
/* Work for the poll loops (the dispatcher: outbox rows). */
void nudge_mark(void);
/* Work for the thread waiters (nudge_wait: the stream consumers): events appended. A commit
 * that appended none (a batch of sends) wakes no consumer. */
void nudge_mark_stream(void);
void nudge_flush(void);
/* Consumer: clear the eventfd's counter after waking. */
void nudge_drain(void);
/* For consumers that are threads rather than poll loops: each flush after
 * nudge_mark_stream advances a generation and wakes waiters. Returns once the generation differs
 * from *seen (updating it) or after timeout_ms; 1 if woken, 0 on timeout. */
int nudge_wait(unsigned long *seen, int timeout_ms);
/* Wake every waiter now (shutdown). */
void nudge_wake_all(void);

#endif

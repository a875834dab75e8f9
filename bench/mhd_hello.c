/* mhd_hello: bare libmicrohttpd hello-world configured like Parley, the baseline for bench/. */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#if MHD_VERSION >= 0x00097002
typedef enum MHD_Result hello_result;
#else
typedef int hello_result;
#endif

static const char BODY_OK[] = "{\"status\":\"ok\"}";
static const char BODY_405[] = "{\"error\":\"method not allowed\"}";

static hello_result answer(void *cls, struct MHD_Connection *conn, const char *url,
                           const char *method, const char *version, const char *upload_data,
                           size_t *upload_data_size, void **con_cls)
{
    (void)cls;
    (void)url;
    (void)version;
    (void)upload_data;
    (void)upload_data_size;

    /* Answer on the second call, once MHD has read the whole request: a response queued on
     * the first call makes MHD close the connection afterwards (no keep-alive), which
     * would measure TCP connects instead of the server. Parley answers at the same point. */
    static int seen;
    if (*con_cls == NULL) {
        *con_cls = &seen;
        return MHD_YES;
    }

    int is_get = strcmp(method, MHD_HTTP_METHOD_GET) == 0;
    int is_head = strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
    const char *body = (is_get || is_head) ? BODY_OK : BODY_405;
    size_t len = (is_get || is_head) ? sizeof(BODY_OK) - 1 : sizeof(BODY_405) - 1;
    unsigned int status = (is_get || is_head) ? MHD_HTTP_OK : MHD_HTTP_METHOD_NOT_ALLOWED;

    /* A response per request, as a real handler building a JSON body would do. */
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_PERSISTENT);
    if (resp == NULL) return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    hello_result ret = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static int parse_uint(const char *s, unsigned long max, unsigned long *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v == 0 || v > max) return -1;
    *out = v;
    return 0;
}

static void usage(const char *prog)
{
    fprintf(stderr, "usage: %s --port N [--threads N]\n", prog);
    fprintf(stderr, "  listens on 127.0.0.1:N; --threads defaults to the number of online cores\n");
}

int main(int argc, char **argv)
{
    unsigned long port = 0;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned long threads = cores > 0 ? (unsigned long)cores : 1;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
            if (parse_uint(argv[++i], 65535, &port) != 0) {
                fprintf(stderr, "mhd_hello: invalid port '%s'\n", argv[i]);
                return 2;
            }
        } else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
            if (parse_uint(argv[++i], 1024, &threads) != 0) {
                fprintf(stderr, "mhd_hello: invalid thread count '%s'\n", argv[i]);
                return 2;
            }
        } else {
            usage(argv[0]);
            return 2;
        }
    }
    if (port == 0) {
        usage(argv[0]);
        return 2;
    }

    /* Block the stop signals before MHD spawns threads so that only sigwait() sees them. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    if (pthread_sigmask(SIG_BLOCK, &stop, NULL) != 0) {
        fprintf(stderr, "mhd_hello: pthread_sigmask failed\n");
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);

    struct sockaddr_in addr;
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

    int use_epoll = MHD_is_feature_supported(MHD_FEATURE_EPOLL) == MHD_YES;
    unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    flags |= use_epoll ? MHD_USE_EPOLL : MHD_USE_AUTO;

    struct MHD_Daemon *d = MHD_start_daemon(
        flags, (uint16_t)port, NULL, NULL, answer, NULL, MHD_OPTION_SOCK_ADDR,
        (const struct sockaddr *)&addr, MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)threads,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)30, MHD_OPTION_END);
    if (d == NULL) {
        fprintf(stderr, "mhd_hello: failed to start on 127.0.0.1:%lu\n", port);
        return 1;
    }
    fprintf(stderr, "mhd_hello: listening on 127.0.0.1:%lu (%s, %lu threads, MHD %s)\n", port,
            use_epoll ? "epoll" : "auto", threads, MHD_get_version());

    int sig = 0;
    while (sigwait(&stop, &sig) != 0) {
    }
    fprintf(stderr, "mhd_hello: signal %d, stopping\n", sig);
    MHD_stop_daemon(d);
    return 0;
}

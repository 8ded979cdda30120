/*  pp_failmalloc: an LD_PRELOAD shim that makes malloc(size) fail for one exact size, to
    drive a real process into its out-of-memory paths from a black-box test.

    PP_FAILMALLOC_SIZE=<bytes>: every malloc of exactly that many bytes returns NULL with
    errno ENOMEM. Every other allocation goes to glibc's own __libc_malloc (calling it
    directly avoids dlsym, which itself allocates). Not for sanitizer builds: ASan must
    own malloc. */
#include <errno.h>
#include <stdlib.h>

extern void *__libc_malloc(size_t size);

static size_t s_fail_size;
static int s_ready;

static void s_init(void)
{
    const char *v = getenv("PP_FAILMALLOC_SIZE");
    s_fail_size = v ? strtoull(v, NULL, 10) : 0;
    s_ready = 1;
}

void *malloc(size_t size)
{
    if (!s_ready) s_init();
    if (s_fail_size && size == s_fail_size) {
        errno = ENOMEM;
        return NULL;
    }
    return __libc_malloc(size);
}

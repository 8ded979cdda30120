/*  pushpipe-keygen NAME --dir DIR [--force]

    Writes a CURVE key pair with czmq's zcert: DIR/NAME.cert (public: give it to the broker's
    allow_dir, or to clients when NAME is the broker) and DIR/NAME.cert_secret (mode 0600:
    stays with its owner). Refuses to overwrite an existing pair unless --force.
    Exit 0 on success, 1 on failure to write, 2 on bad usage.
*/
#include <czmq.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define S_NAME_MAX 64

static void s_usage(FILE *out)
{
    fprintf(out,
            "usage: pushpipe-keygen NAME --dir DIR [--force]\n"
            "  writes DIR/NAME.cert (public) and DIR/NAME.cert_secret (secret, mode 0600)\n"
            "  NAME: 1 to %d of A-Z a-z 0-9 . _ - (not starting with '.')\n",
            S_NAME_MAX);
}

static bool s_name_ok(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len > S_NAME_MAX || name[0] == '.') return false;
    for (size_t i = 0; i < len; i++) {
        char ch = name[i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-';
        if (!ok) return false;
    }
    return true;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"dir", required_argument, NULL, 'd'},
                                         {"force", no_argument, NULL, 'f'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *dir = NULL;
    bool force = false;
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'd':
            dir = optarg;
            break;
        case 'f':
            force = true;
            break;
        case 'h':
            s_usage(stdout);
            return 0;
        default:
            s_usage(stderr);
            return 2;
        }
    }
    if (optind != argc - 1 || !dir) {
        s_usage(stderr);
        return 2;
    }
    const char *name = argv[optind];
    if (!s_name_ok(name)) {
        fprintf(stderr, "pushpipe-keygen: bad NAME \"%.80s\"\n", name);
        s_usage(stderr);
        return 2;
    }
    if (!zsys_has_curve()) {
        fprintf(stderr, "pushpipe-keygen: this libzmq was built without CURVE\n");
        return 1;
    }
    struct stat st;
    if (stat(dir, &st) != 0 && mkdir(dir, 0755) != 0) {
        fprintf(stderr, "pushpipe-keygen: %s: %s\n", dir, strerror(errno));
        return 1;
    }
    char path[4096], secret[4096 + 8];
    if (snprintf(path, sizeof path, "%s/%s.cert", dir, name) >= (int)sizeof path - 8 ||
        strlen(path) > 240) { /* zcert builds "<path>_secret" in 256 bytes */
        fprintf(stderr, "pushpipe-keygen: path too long\n");
        return 2;
    }
    snprintf(secret, sizeof secret, "%s_secret", path);
    if (!force && (access(path, F_OK) == 0 || access(secret, F_OK) == 0)) {
        fprintf(stderr, "pushpipe-keygen: %s exists (use --force to replace it)\n", path);
        return 1;
    }
    zcert_t *cert = zcert_new();
    if (!cert) {
        fprintf(stderr, "pushpipe-keygen: cannot create a key pair\n");
        return 1;
    }
    zcert_set_meta(cert, "name", "%s", name);
    zcert_set_meta(cert, "created-by", "pushpipe-keygen");
    /* zcert_save writes the secret file under czmq's private file mode (0600). */
    int rc = zcert_save(cert, path);
    if (rc == 0 && (chmod(secret, 0600) != 0 || chmod(path, 0644) != 0)) rc = -1;
    if (rc != 0) {
        fprintf(stderr, "pushpipe-keygen: cannot write %s: %s\n", path, strerror(errno));
        zcert_destroy(&cert);
        return 1;
    }
    printf("public  %s\nsecret  %s\nkey     %s\n", path, secret, zcert_public_txt(cert));
    zcert_destroy(&cert);
    return 0;
}

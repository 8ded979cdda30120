/*  pushpipe-apns-sender: delivers APNS jobs from the broker to Apple (see
    docs/apns-sender.md). */
#include "pp_apns_sender.h"
#include "pp_proc.h"

int main(int argc, char **argv)
{
    pp_proc_t *proc = pp_proc_new("apns-sender", "apns_sender", NULL, argc, argv, NULL, NULL, NULL);
    pp_apns_sender_t *sender = pp_apns_sender_new(proc);
    if (!sender || pp_proc_ready(proc, 9620) != 0) {
        pp_apns_sender_destroy(&sender);
        pp_proc_destroy(&proc);
        return 2;
    }
    int rc = pp_apns_sender_run(sender);
    pp_apns_sender_destroy(&sender);
    pp_proc_destroy(&proc);
    return rc;
}

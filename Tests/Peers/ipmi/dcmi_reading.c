/*
 * A loadable module for OpenIPMI's ipmi_sim (which has no DCMI support): answers DCMI
 * "Get Power Reading" (NetFn 0x2C, group extension 0xDC, command 0x02) from a state file the
 * tests write, so a test controls the BMC's power reading while emit samples it.
 *
 * State file: "WATTS" (active reading) or "deactivated" (the BMC is not measuring: state byte 0,
 * zeros, as OpenBMC answers). Re-read on every request.
 * lan.conf: loadlib "/abs/dcmi_reading.so" "/abs/state-file"
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <OpenIPMI/mcserv.h>

#define GROUP_DCMI 0xDC
#define CMD_GET_POWER_READING 0x02

static char state_path[1024];

static void le16(unsigned char *to, unsigned int value) { to[0] = value & 0xff; to[1] = (value >> 8) & 0xff; }

static void le32(unsigned char *to, uint32_t value)
{
    for (int i = 0; i < 4; i++) to[i] = (value >> (8 * i)) & 0xff;
}

static void answer(lmc_data_t *mc, msg_t *msg, unsigned char *rdata, unsigned int *rdata_len, void *cb_data)
{
    (void)mc; (void)cb_data;
    if (msg->cmd != CMD_GET_POWER_READING) {
        rdata[0] = 0xc1;  /* invalid command */
        rdata[1] = GROUP_DCMI;
        *rdata_len = 2;
        return;
    }
    char text[64] = "";
    FILE *file = fopen(state_path, "r");
    if (file) {
        if (!fgets(text, sizeof text, file)) text[0] = 0;
        fclose(file);
    }
    unsigned int watts = 0;
    int active = strncmp(text, "deactivated", 11) != 0 && sscanf(text, "%u", &watts) == 1;
    if (!active) watts = 0;
    if (watts > 0xffff) watts = 0xffff;
    memset(rdata, 0, 19);
    rdata[1] = GROUP_DCMI;
    le16(rdata + 2, watts);   /* current */
    le16(rdata + 4, watts);   /* minimum */
    le16(rdata + 6, watts);   /* maximum */
    le16(rdata + 8, watts);   /* average */
    le32(rdata + 10, active ? (uint32_t)time(NULL) : 0);
    le32(rdata + 14, active ? 1000 : 0);  /* statistics period, ms */
    rdata[18] = active ? 0x40 : 0x00;     /* bit 6: power measurement active */
    *rdata_len = 19;
}

int ipmi_sim_module_print_version(sys_data_t *sys, char *initstr)
{
    (void)sys; (void)initstr;
    printf("emit test DCMI power reading module\n");
    return 0;
}

int ipmi_sim_module_init(sys_data_t *sys, const char *initstr)
{
    (void)sys;
    snprintf(state_path, sizeof state_path, "%s", initstr ? initstr : "");
    state_path[strcspn(state_path, " \t\n")] = 0;
    ipmi_emu_register_group_extension_handler(GROUP_DCMI, answer, NULL);
    return 0;
}

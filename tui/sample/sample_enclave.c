/*
 * sample_enclave.c: the bundled sample for ensign, a toy "secret-keeping service".
 *
 * It is a normal static x86-64 program, the kind SCONE turns into an enclave. It is small but
 * has every part ensign shows: code in several functions, an initialised table in .data, a
 * zero-filled buffer in .bss, and thread-local variables (.tdata and .tbss, so the binary has a
 * PT_TLS segment). It stores a few secrets, answers lookups with a keyed checksum instead of the
 * secret itself, prints a summary and exits 0. Build with scripts/build_sample.sh.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define VAULT_SLOTS 8
#define SECRET_BYTES 32

struct vault_entry {
    const char *label;
    uint32_t owner;
    uint32_t policy; /* bit 0: readable by owner, bit 1: sealed */
};

/* .data: an initialised, writable table. */
struct vault_entry vault_table[VAULT_SLOTS] = {
    {"database-password", 1000, 3},
    {"api-token", 1000, 1},
    {"tls-private-key", 0, 3},
    {"backup-passphrase", 1001, 2},
};

/* .bss: secret material, zero until the service stores something. */
static unsigned char vault_secrets[VAULT_SLOTS][SECRET_BYTES];
unsigned char scratch_buffer[4096];

/* Thread-local state: .tdata (initialised) and .tbss (zero). */
__thread uint32_t requests_served = 1;
__thread unsigned char request_scratch[64];

/* FNV-1a, keyed with the slot's secret: what a lookup reveals instead of the secret. */
static uint32_t keyed_checksum(const unsigned char *key, size_t key_len, const char *message)
{
    uint32_t hash = 2166136261u;
    for (size_t i = 0; i < key_len; i++) {
        hash = (hash ^ key[i]) * 16777619u;
    }
    for (const char *p = message; *p != '\0'; p++) {
        hash = (hash ^ (unsigned char)*p) * 16777619u;
    }
    return hash;
}

static int vault_find(const char *label)
{
    for (int slot = 0; slot < VAULT_SLOTS; slot++) {
        if (vault_table[slot].label != NULL && strcmp(vault_table[slot].label, label) == 0) {
            return slot;
        }
    }
    return -1;
}

__attribute__((noinline)) int vault_store(const char *label, const char *secret)
{
    int slot = vault_find(label);
    if (slot < 0) {
        return -1;
    }
    size_t length = strlen(secret);
    if (length > SECRET_BYTES) {
        length = SECRET_BYTES;
    }
    memset(vault_secrets[slot], 0, SECRET_BYTES);
    memcpy(vault_secrets[slot], secret, length);
    requests_served++;
    return slot;
}

__attribute__((noinline)) int vault_lookup(const char *label, uint32_t caller, uint32_t *proof)
{
    int slot = vault_find(label);
    if (slot < 0 || vault_table[slot].owner != caller || !(vault_table[slot].policy & 1u)) {
        return -1;
    }
    snprintf((char *)request_scratch, sizeof request_scratch, "lookup:%s:%u", label, caller);
    *proof = keyed_checksum(vault_secrets[slot], SECRET_BYTES, (const char *)request_scratch);
    requests_served++;
    return 0;
}

int main(void)
{
    uint32_t proof = 0;
    vault_store("database-password", "correct horse battery staple");
    vault_store("api-token", "tok_0123456789abcdef");
    int status = vault_lookup("api-token", 1000, &proof);
    int denied = vault_lookup("tls-private-key", 1000, &proof);

    snprintf((char *)scratch_buffer, sizeof scratch_buffer,
             "sample enclave: %d secrets, lookup %s (proof %08x), foreign key %s, %u requests",
             VAULT_SLOTS / 2, status == 0 ? "ok" : "failed", (unsigned)proof,
             denied != 0 ? "denied" : "LEAKED", (unsigned)requests_served);
    puts((const char *)scratch_buffer);
    return status == 0 && denied != 0 ? 0 : 1;
}

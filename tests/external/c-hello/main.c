//! @expect-line: hello from a C PV kernel
//! @expect-line: start_info magic: xen-3.0-x86_64
//! @covers: xen_version.version
/* A Xen-style PV guest in C: prints through console_io, checks start_info
 * and xen_version, reports, and powers off. */
typedef unsigned long u64;
typedef unsigned int u32;

extern char hypercall_page[];

static long hypercall3(unsigned nr, u64 a1, u64 a2, u64 a3)
{
    register u64 rdi asm("rdi") = a1;
    register u64 rsi asm("rsi") = a2;
    register u64 rdx asm("rdx") = a3;
    long ret;
    asm volatile("call *%[entry]"
                 : "=a"(ret), "+r"(rdi), "+r"(rsi), "+r"(rdx)
                 : [entry] "r"(hypercall_page + nr * 32)
                 : "rcx", "r11", "r8", "r9", "r10", "memory");
    return ret;
}

void *memset(void *d, int c, unsigned long n)
{
    unsigned char *p = d;
    while (n--) *p++ = (unsigned char)c;
    return d;
}

void *memcpy(void *d, const void *s, unsigned long n)
{
    unsigned char *p = d;
    const unsigned char *q = s;
    while (n--) *p++ = *q++;
    return d;
}

static unsigned long len(const char *s) { unsigned long n = 0; while (s[n]) n++; return n; }
static void puts_(const char *s) { hypercall3(18, 0, len(s), (u64)s); }

static void putx(u64 v)
{
    char buf[19] = "0x";
    for (int i = 0; i < 16; i++) {
        unsigned d = (v >> (60 - 4 * i)) & 0xf;
        buf[2 + i] = d < 10 ? '0' + d : 'a' + d - 10;
    }
    buf[18] = 0;
    puts_(buf);
}

static int failures;
static void check(const char *what, int ok)
{
    puts_(ok ? "PASS: " : "FAIL: ");
    puts_(what);
    puts_("\n");
    failures += !ok;
}

struct start_info_head {
    char magic[32];
    u64 nr_pages, shared_info;
    u32 flags, pad;
};

void c_main(struct start_info_head *si)
{
    puts_("hello from a C PV kernel\n");
    puts_("start_info magic: ");
    hypercall3(18, 0, 14, (u64)si->magic);
    puts_("\nnr_pages: ");
    putx(si->nr_pages);
    puts_("\n");
    check("magic starts with xen-3.0-x86_64", si->magic[0] == 'x' && si->magic[13] == '4');
    check("initial domain flags", (si->flags & 3) == 3);
    long v = hypercall3(17, 0, 0, 0);
    puts_("xen_version: ");
    putx((u64)v);
    puts_("\n");
    check("xen_version is 4.17", v == 0x40011);
    puts_(failures ? "Test result: FAILURE\n" : "Test result: SUCCESS\n");
    u32 reason = 0; /* SHUTDOWN_poweroff */
    hypercall3(29, 2, (u64)&reason, 0);
    for (;;)
        ;
}

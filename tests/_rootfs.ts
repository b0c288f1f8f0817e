/**
 * A busybox rootfs for the tests' containers, and whether one can be made
 * here (a static busybox, root of its user namespace).
 *
 * @module
 */

export const BUSYBOX = "/bin/busybox";

/** Why a container can't be made here, or `undefined` if it can. */
export const NO_CONTAINER: string | undefined = (() => {
  let elf: Uint8Array;
  try {
    elf = Deno.readFileSync(BUSYBOX);
  } catch {
    return `${BUSYBOX} is missing; install Debian's busybox-static`;
  }
  if (!isStaticElf(elf)) {
    return `${BUSYBOX} is dynamically linked; install Debian's busybox-static`;
  }
  if (Deno.uid() !== 0) return "not root of its user namespace";
  return undefined;
})();

/**
 * Whether an ELF file runs without a dynamic loader: it has no PT_INTERP
 * program header. Only 64-bit little-endian files count.
 */
function isStaticElf(elf: Uint8Array): boolean {
  const view = new DataView(elf.buffer, elf.byteOffset, elf.byteLength);
  if (elf.length < 64 || view.getUint32(0) !== 0x7f454c46) return false;
  if (elf[4] !== 2 || elf[5] !== 1) return false; // ELFCLASS64, ELFDATA2LSB
  const phoff = Number(view.getBigUint64(32, true));
  const phentsize = view.getUint16(54, true);
  const phnum = view.getUint16(56, true);
  for (let i = 0; i < phnum; i++) {
    const at = phoff + i * phentsize;
    if (at + 4 > elf.length) return false;
    if (view.getUint32(at, true) === 3) return false; // PT_INTERP
  }
  return true;
}

/** The applets busybox provides, listed once. */
const decoder = new TextDecoder();
let applets: string[] | undefined;

function listApplets(): string[] {
  if (applets) return applets;
  const { success, stdout, stderr } = new Deno.Command(BUSYBOX, {
    args: ["--list"],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).outputSync();
  if (!success) throw new Error(`busybox --list failed: ${decoder.decode(stderr)}`);
  applets = decoder.decode(stdout).split("\n").filter((name) => /^[\w.[-]+$/.test(name));
  return applets;
}

/**
 * Makes the rootfs: /bin/busybox with its applets as relative symlinks, and
 * /proc, /tmp, /data, /etc. Nothing in it names a host path.
 */
export function makeRootfs(rootfs: string, owner?: { uid: number; gid: number }): void {
  Deno.chmodSync(rootfs, 0o755);
  for (const dir of ["bin", "proc", "tmp", "data", "etc"]) Deno.mkdirSync(`${rootfs}/${dir}`);
  Deno.chmodSync(`${rootfs}/tmp`, 0o1777);
  Deno.copyFileSync(BUSYBOX, `${rootfs}/bin/busybox`);
  Deno.chmodSync(`${rootfs}/bin/busybox`, 0o755);
  for (const applet of listApplets()) {
    if (applet !== "busybox") Deno.symlinkSync("busybox", `${rootfs}/bin/${applet}`);
  }
  Deno.writeTextFileSync(`${rootfs}/etc/passwd`, "root:x:0:0:root:/:/bin/sh\n");
  Deno.writeTextFileSync(`${rootfs}/etc/group`, "root:x:0:\n");
  if (!owner) return;
  const paths = ["", "/bin", "/bin/busybox", "/proc", "/tmp", "/data", "/etc", "/etc/passwd"];
  for (const path of [...paths, "/etc/group"]) {
    Deno.chownSync(`${rootfs}${path}`, owner.uid, owner.gid);
  }
}

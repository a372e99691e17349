import { mkdir, rm, stat, statfs, writeFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { defineConnector, check, type Check } from 'quark/sdk';

interface LocalFilesConfig {
  folder: string;
  createFolder?: boolean;
  minFreeSpace?: number;
}

function reason(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied for the runtime\'s user';
  if (code === 'ENOENT') return 'it does not exist';
  if (code === 'ENOTDIR') return 'a part of the path is not a folder';
  if (code === 'EROFS') return 'the file system is read-only';
  return (error as Error).message;
}

export default defineConnector<LocalFilesConfig>({
  async testConnection({ config, signal }) {
    const checks: Check[] = [];
    const { folder } = config;
    try {
      if (config.createFolder) await mkdir(folder, { recursive: true });
      const info = await stat(folder);
      if (!info.isDirectory()) {
        return { checks: [check.failed('folder', `${folder} exists but is not a folder; point the connection at a folder`, { title: 'Folder exists' })] };
      }
      checks.push(check.ok('folder', `${folder} exists`, { title: 'Folder exists' }));
    } catch (error) {
      const hint = config.createFolder ? '' : ', or turn on "Create folder"';
      return { checks: [check.failed('folder', `${folder} cannot be used: ${reason(error)}; create it or fix the path${hint}`, { title: 'Folder exists' })] };
    }
    signal.throwIfAborted();
    try {
      await readdir(folder);
      checks.push(check.ok('read', 'the runtime can list the folder', { title: 'Read access' }));
    } catch (error) {
      checks.push(check.failed('read', `the runtime cannot list ${folder}: ${reason(error)}`, { title: 'Read access' }));
    }
    const probe = join(folder, `.quark-test-${process.pid}-${Date.now()}`);
    try {
      await writeFile(probe, 'quark test connection', { signal });
      await rm(probe, { force: true });
      checks.push(check.ok('write', 'the runtime can create and delete files in the folder', { title: 'Write access' }));
    } catch (error) {
      checks.push(check.failed('write', `the runtime cannot write to ${folder}: ${reason(error)}`, { title: 'Write access' }));
    }
    try {
      const fs = await statfs(folder);
      const freeMb = Math.floor((fs.bavail * fs.bsize) / (1024 * 1024));
      const minimum = config.minFreeSpace ?? 100;
      checks.push(
        freeMb >= minimum
          ? check.ok('space', `${freeMb} MB free`, { title: 'Free space' })
          : check.warning('space', `only ${freeMb} MB free, below the ${minimum} MB minimum; free some space or lower "Minimum free space"`, { title: 'Free space' }),
      );
    } catch (error) {
      checks.push(check.skipped('space', `free space unknown: ${reason(error)}`, { title: 'Free space' }));
    }
    return { checks };
  },
});

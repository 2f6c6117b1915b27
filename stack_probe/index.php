<?php
// The Remora stack probe: one request proves the whole path a page of the site takes.
// It writes a row through the master (DB_*), reads it back through the shadow database
// (SHADOW_DB_*, the read-only replica), writes and reads a file in each data-file directory
// (REPO_PATH, PUBLIC_STAGING_PATH), and answers JSON naming the front end that served it:
// HTTP 200 when every part passed, 503 naming the parts that failed. The settings come from the
// PHP file the php_frontend recipe writes outside the web root (REMORA_CONFIG in the vhost).
declare(strict_types=1);

const PROBE_TABLE = 'remora_stack_probe';
const SHADOW_WAIT_SECONDS = 5.0; // a replica may lag a moment behind the master
const CONNECT_TIMEOUT_SECONDS = 3;

header('Content-Type: application/json');
header('Cache-Control: no-store');

$frontend = gethostname() ?: 'unknown';
$result = [
    'frontend' => $frontend,
    'master_write' => false,
    'shadow_read' => false,
    'master_server' => null,
    'shadow_server' => null,
    'data_dirs' => new stdClass(),
];
$errors = [];

function setting(string $name, $fallback = null)
{
    return defined($name) ? constant($name) : $fallback;
}

function connect(string $prefix): mysqli
{
    $db = mysqli_init();
    $db->options(MYSQLI_OPT_CONNECT_TIMEOUT, CONNECT_TIMEOUT_SECONDS);
    $db->real_connect(
        (string) setting($prefix . 'DB_HOST', setting('DB_HOST')),
        (string) setting($prefix . 'DB_USER', setting('DB_USER')),
        (string) setting($prefix . 'DB_PASS', setting('DB_PASS')),
        (string) setting($prefix . 'DB_NAME', setting('DB_NAME')),
        (int) setting($prefix . 'DB_PORT', setting('DB_PORT', 3306))
    );
    return $db;
}

$config = getenv('REMORA_CONFIG') ?: '/etc/remora/config.php';
if (!is_readable($config)) {
    $errors['config'] = "the configuration $config cannot be read";
} else {
    require $config;
}

mysqli_report(MYSQLI_REPORT_ERROR | MYSQLI_REPORT_STRICT);
$token = bin2hex(random_bytes(8));
$id = null;

if (!isset($errors['config'])) {
    try {
        $master = connect('');
        // The mariadb_master recipe creates the table (the application account may not create
        // tables); a database set up otherwise gets it here, when the account may.
        $exists = $master->query(
            "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()"
            . " AND TABLE_NAME = '" . PROBE_TABLE . "'"
        )->fetch_row()[0];
        if ((int) $exists === 0) {
            $master->query(
                'CREATE TABLE ' . PROBE_TABLE . ' ('
                . ' id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY,'
                . ' frontend VARCHAR(255) NOT NULL,'
                . ' token CHAR(16) NOT NULL,'
                . ' written_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP'
                . ') ENGINE=InnoDB'
            );
        }
        $insert = $master->prepare('INSERT INTO ' . PROBE_TABLE . ' (frontend, token) VALUES (?, ?)');
        $insert->bind_param('ss', $frontend, $token);
        $insert->execute();
        $id = (int) $master->insert_id;
        // The table stays small: a probe's rows are only needed for a moment.
        $master->query('DELETE FROM ' . PROBE_TABLE . ' WHERE written_at < NOW() - INTERVAL 1 HOUR');
        $result['master_write'] = true;
        $result['master_server'] = $master->query('SELECT @@hostname')->fetch_row()[0];
    } catch (mysqli_sql_exception $e) {
        $errors['master_write'] = $e->getMessage();
    }
}

if ($id !== null) {
    try {
        $shadow = connect('SHADOW_');
        // Which server answered the reads: the shadow database (a replica), or the master.
        $result['shadow_server'] = $shadow->query('SELECT @@hostname')->fetch_row()[0];
        $select = $shadow->prepare('SELECT token FROM ' . PROBE_TABLE . ' WHERE id = ?');
        $deadline = microtime(true) + SHADOW_WAIT_SECONDS;
        do {
            $select->bind_param('i', $id);
            $select->execute();
            $row = $select->get_result()->fetch_row();
            if ($row !== null && $row[0] === $token) {
                $result['shadow_read'] = true;
                break;
            }
            usleep(100000);
        } while (microtime(true) < $deadline);
        if (!$result['shadow_read']) {
            $errors['shadow_read'] = 'the row written through the master did not appear on the shadow';
        }
    } catch (mysqli_sql_exception $e) {
        $errors['shadow_read'] = $e->getMessage();
    }
} elseif (!isset($errors['config'])) {
    $errors['shadow_read'] = 'not tried: nothing was written through the master';
}

$dirs = [];
foreach (['REPO_PATH', 'PUBLIC_STAGING_PATH'] as $name) {
    $dir = setting($name);
    if ($dir === null) {
        $errors['data_dirs'][$name] = "$name is not configured";
        continue;
    }
    // A file of this request's own: probes running at once must not read each other's token.
    $file = rtrim((string) $dir, '/') . '/.remora-stack-probe-' . $frontend . '-' . $token;
    $ok = @file_put_contents($file, $token) === strlen($token) && @file_get_contents($file) === $token;
    @unlink($file);
    $dirs[$dir] = $ok;
    if (!$ok) {
        $errors['data_dirs'][$dir] = 'cannot write and read back a file there';
    }
}
$result['data_dirs'] = $dirs ?: new stdClass();

if ($errors) {
    http_response_code(503);
    $result['failed'] = array_keys($errors);
    $result['errors'] = $errors;
}
echo json_encode($result, JSON_UNESCAPED_SLASHES), "\n";
